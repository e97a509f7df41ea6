"""The registry with scripted actors: isolation, restart with backoff, give-up, limits, drain,
and rooms told apart by sid."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
import pytest
from anyio.abc import TaskStatus
from prometheus_client import REGISTRY

from actors import ActorCrashed, ActorStartError
from actors.room import RoomHandle, RoomSpec
from supervisor import RoomRegistry, SupervisorSettings

FAST = SupervisorSettings(
    restart_backoff_initial_s=0.001,
    restart_backoff_max_s=0.01,
    max_restarts=3,
    restart_window_s=60,
    max_rooms=3,
)


class ScriptedActor:
    """Joins at once; fails as its script says; otherwise runs until asked to stop."""

    def __init__(self, spec: RoomSpec, fail: str | None, log: list[tuple[str, int, str]]) -> None:
        self.spec = spec
        self._fail = fail
        self._log = log
        self._send, self._inbox = anyio.create_memory_object_stream[object](8)

    async def run(self, *, task_status: TaskStatus[RoomHandle] = anyio.TASK_STATUS_IGNORED) -> None:
        with self._send, self._inbox:
            self._log.append(("start", self.spec.attempt, self.spec.room))
            if self._fail == "start":
                raise ActorStartError("scripted start failure")
            stop = anyio.Event()
            task_status.started(RoomHandle(self.spec.room, "c", self._send, stop))
            if self._fail == "run":
                raise ActorCrashed("scripted crash")
            await stop.wait()
            self._log.append(("stop", self.spec.attempt, self.spec.room))


@dataclass(frozen=True)
class Scripted:
    """A running registry of scripted actors, and what its actors did: (kind, attempt, room)."""

    registry: RoomRegistry
    log: list[tuple[str, int, str]]


Harness = Callable[[dict[str, str]], Scripted]
"""Starts a registry whose actors fail as ``{room: "start" | "run"}`` says."""


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    log: list[tuple[str, int, str]] = []
    async with anyio.create_task_group() as tg:

        def make(failures: dict[str, str], settings: SupervisorSettings = FAST) -> Scripted:
            def actor(spec: RoomSpec) -> ScriptedActor:
                return ScriptedActor(spec, failures.get(spec.room), log)

            registry = RoomRegistry(
                settings, lambda room, agent, n: RoomSpec(room, "ws://x", "t", n, agent), actor
            )
            tg.start_soon(registry.run)
            return Scripted(registry, log)

        yield make
        tg.cancel_scope.cancel()


async def wait_for(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.wait_all_tasks_blocked()
            await anyio.lowlevel.checkpoint()


async def test_a_crashing_actor_is_restarted_and_others_are_untouched(harness: Harness) -> None:
    scripted = harness({"bad": "run"})
    registry = scripted.registry
    await wait_for(lambda: registry._tg is not None)
    registry.ensure("good")
    registry.ensure("bad")
    await wait_for(lambda: "bad" not in registry.rooms)
    starts = Counter(room for kind, _, room in scripted.log if kind == "start")
    # 1 start + max_restarts restarts, then the registry gives up on that room only.
    assert starts["bad"] == FAST.max_restarts + 1
    assert starts["good"] == 1
    assert registry.joined == {"good"}
    # Given up: a webhook for the same room does not start it again...
    registry.ensure("bad")
    assert "bad" not in registry.rooms
    # ...until the room is finished (stop) and started anew.
    registry.stop("bad", "room finished")
    registry.ensure("bad")
    assert "bad" in registry.rooms


async def test_restarts_count_attempts(harness: Harness) -> None:
    scripted = harness({"flaky": "start"})
    registry = scripted.registry
    await wait_for(lambda: registry._tg is not None)
    registry.ensure("flaky")
    await wait_for(lambda: "flaky" not in registry.rooms)
    attempts = [n for kind, n, room in scripted.log if room == "flaky"]
    assert attempts == [0, 1, 2, 3]


async def test_rooms_beyond_max_rooms_wait_for_a_slot(harness: Harness) -> None:
    registry = harness({}).registry
    await wait_for(lambda: registry._tg is not None)
    for i in range(5):
        registry.ensure(f"r{i}")
    await wait_for(lambda: len(registry.joined) == 3)
    assert registry.waiting == 2
    registry.stop("r0", "room finished")
    await wait_for(lambda: registry.joined == {"r1", "r2", "r3"})
    assert registry.waiting == 1


async def test_drain_stops_every_actor_within_the_deadline(harness: Harness) -> None:
    scripted = harness({})
    registry = scripted.registry
    await wait_for(lambda: registry._tg is not None)
    for room in ("a", "b", "c"):
        registry.ensure(room)
    await wait_for(lambda: len(registry.joined) == 3)
    assert await registry.drain(5.0)
    assert registry.rooms == frozenset()
    stops = sorted(room for kind, _, room in scripted.log if kind == "stop")
    assert stops == ["a", "b", "c"]
    registry.ensure("d")  # no new rooms while draining
    assert registry.rooms == frozenset()


def stale_finishes() -> float:
    value = REGISTRY.get_sample_value("voice_supervisor_stale_room_finished_total")
    return 0.0 if value is None else value


async def test_a_stop_for_an_earlier_room_of_the_same_name_is_ignored(harness: Harness) -> None:
    scripted = harness({})
    registry = scripted.registry
    await wait_for(lambda: registry._tg is not None)
    registry.ensure("r", sid="RM_new")
    await wait_for(lambda: registry.joined == {"r"})
    before = stale_finishes()
    registry.stop("r", "room finished", sid="RM_old")
    await anyio.wait_all_tasks_blocked()
    assert registry.joined == {"r"} and registry.sid("r") == "RM_new"
    assert stale_finishes() == before + 1
    assert ("stop", 0, "r") not in scripted.log
    # Its own room_finished stops it; so does a stop without a sid (reconcile, drain).
    registry.stop("r", "room finished", sid="RM_new")
    await wait_for(lambda: "r" not in registry.rooms)
    registry.ensure("r2", sid="RM_2")
    await wait_for(lambda: registry.joined == {"r2"})
    registry.stop("r2", "room gone (reconcile)")
    await wait_for(lambda: "r2" not in registry.rooms)


async def test_an_actor_asked_for_without_a_sid_takes_the_first_one_given(harness: Harness) -> None:
    registry = harness({}).registry
    await wait_for(lambda: registry._tg is not None)
    registry.ensure("r")
    await wait_for(lambda: registry.joined == {"r"})
    registry.ensure("r", sid="RM_a")  # e.g. the next reconcile lists it
    assert registry.sid("r") == "RM_a"
    registry.stop("r", "room finished", sid="RM_b")
    await anyio.wait_all_tasks_blocked()
    assert registry.joined == {"r"}


async def test_a_new_room_under_the_same_name_starts_once_the_old_actor_ended(
    harness: Harness,
) -> None:
    scripted = harness({})
    registry = scripted.registry
    await wait_for(lambda: registry._tg is not None)
    registry.ensure("r", sid="RM_a")
    await wait_for(lambda: registry.joined == {"r"})
    # The new room's room_started can arrive before the old one's room_finished.
    registry.ensure("r", sid="RM_b")
    assert registry.sid("r") == "RM_a"
    registry.stop("r", "room finished", sid="RM_a")
    await wait_for(lambda: registry.sid("r") == "RM_b" and registry.joined == {"r"})
    assert [kind for kind, _, room in scripted.log if room == "r"] == ["start", "stop", "start"]


async def test_a_newer_room_that_ends_before_its_turn_is_not_started(harness: Harness) -> None:
    scripted = harness({})
    registry = scripted.registry
    await wait_for(lambda: registry._tg is not None)
    registry.ensure("r", sid="RM_a")
    await wait_for(lambda: registry.joined == {"r"})
    registry.ensure("r", sid="RM_b")
    registry.stop("r", "room finished", sid="RM_b")
    await anyio.wait_all_tasks_blocked()
    assert registry.joined == {"r"} and registry.sid("r") == "RM_a"  # not stale: RM_a runs on
    registry.stop("r", "room finished", sid="RM_a")
    await wait_for(lambda: "r" not in registry.rooms)
    assert [kind for kind, _, room in scripted.log if room == "r"] == ["start", "stop"]


async def test_giving_up_is_per_sid(harness: Harness) -> None:
    registry = harness({"bad": "run"}).registry
    await wait_for(lambda: registry._tg is not None)
    registry.ensure("bad", sid="RM_1")
    await wait_for(lambda: "bad" not in registry.rooms)
    registry.ensure("bad", sid="RM_1")
    registry.stop("bad", "room finished", sid="RM_0")  # an earlier room's end changes nothing
    registry.ensure("bad", sid="RM_1")
    assert "bad" not in registry.rooms
    # A new room under the same name is tried again.
    registry.ensure("bad", sid="RM_2")
    assert registry.sid("bad") == "RM_2"


async def test_a_waiting_room_keeps_its_place_and_ignores_stale_stops(harness: Harness) -> None:
    registry = harness({}).registry
    await wait_for(lambda: registry._tg is not None)
    for i in range(3):
        registry.ensure(f"r{i}", sid=f"RM_{i}")
    registry.ensure("w1", sid="RM_w1_old")
    registry.ensure("w2", sid="RM_w2")
    registry.ensure("w1", sid="RM_w1")
    await wait_for(lambda: len(registry.joined) == 3)
    assert registry.waiting == 2
    registry.stop("w1", "room finished", sid="RM_w1_old")
    assert registry.waiting == 2
    registry.stop("r0", "room finished", sid="RM_0")
    await wait_for(lambda: registry.joined == {"r1", "r2", "w1"})
    assert registry.sid("w1") == "RM_w1"
