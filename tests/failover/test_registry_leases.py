"""The registry's lease hook with scripted leases (no Redis): no lease, no actor; a lost lease
cancels the actor at once and it is not restarted; the lease is released when the room ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
import pytest
from anyio.abc import TaskStatus

from actors.room import RoomHandle, RoomSpec
from supervisor import RoomRegistry, SupervisorSettings

pytestmark = [pytest.mark.failover, pytest.mark.anyio]


class ScriptedLeases:
    """Grants the rooms in ``grant``; ``lose(room)`` makes its keeper report a loss."""

    def __init__(self, grant: set[str]) -> None:
        self.grant = grant
        self.claims: list[str] = []
        self.released: list[str] = []
        self._lost: dict[str, anyio.Event] = {}

    async def claim(self, room: str) -> bool:
        self.claims.append(room)
        return room in self.grant

    async def keep(self, room: str) -> str:
        event = self._lost.setdefault(room, anyio.Event())
        await event.wait()
        return "taken"

    async def release(self, room: str) -> None:
        self.released.append(room)

    def lose(self, room: str) -> None:
        self._lost.setdefault(room, anyio.Event()).set()


class Actor:
    """Runs until stopped or cancelled; records how it ended."""

    def __init__(self, spec: RoomSpec, log: list[tuple[str, str]]) -> None:
        self.spec = spec
        self._log = log

    async def run(self, *, task_status: TaskStatus[RoomHandle] = anyio.TASK_STATUS_IGNORED) -> None:
        send, receive = anyio.create_memory_object_stream[object](8)
        stop = anyio.Event()
        with send, receive:
            self._log.append(("start", self.spec.room))
            task_status.started(RoomHandle(self.spec.room, "c", send, stop))
            try:
                await stop.wait()
                self._log.append(("stopped", self.spec.room))
            except anyio.get_cancelled_exc_class():
                self._log.append(("cancelled", self.spec.room))
                raise


@dataclass(frozen=True)
class Leased:
    """A running registry under scripted leases, and how its actors began and ended."""

    registry: RoomRegistry
    log: list[tuple[str, str]]


RegistryWith = Callable[[ScriptedLeases], Leased]


@pytest.fixture
async def registry_with() -> AsyncIterator[RegistryWith]:
    async with anyio.create_task_group() as tg:

        def make(leases: ScriptedLeases) -> Leased:
            log: list[tuple[str, str]] = []
            registry = RoomRegistry(
                SupervisorSettings(restart_backoff_initial_s=0.001),
                lambda room, agent, n: RoomSpec(room, "ws://x", "t", n, agent),
                lambda spec: Actor(spec, log),
                leases=leases,
            )
            tg.start_soon(registry.run)
            return Leased(registry, log)

        yield make
        tg.cancel_scope.cancel()


async def settle(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.wait_all_tasks_blocked()


async def test_only_rooms_whose_lease_is_won_get_an_actor(
    registry_with: RegistryWith,
) -> None:
    leases = ScriptedLeases({"mine"})
    leased = registry_with(leases)
    registry = leased.registry
    await settle(lambda: registry._tg is not None)
    registry.ensure("mine")
    registry.ensure("theirs")
    await settle(lambda: registry.joined == {"mine"} and "theirs" not in registry.rooms)
    assert leased.log == [("start", "mine")]
    assert leases.released == []
    # A later reconcile tries the other room again: still not ours.
    registry.ensure("theirs")
    await settle(lambda: leases.claims.count("theirs") == 2 and "theirs" not in registry.rooms)


async def test_a_lost_lease_cancels_the_actor_at_once_without_restart(
    registry_with: RegistryWith,
) -> None:
    leases = ScriptedLeases({"r1"})
    leased = registry_with(leases)
    registry = leased.registry
    await settle(lambda: registry._tg is not None)
    registry.ensure("r1")
    await settle(lambda: registry.joined == {"r1"})
    leases.lose("r1")
    await settle(lambda: "r1" not in registry.rooms)
    assert leased.log == [("start", "r1"), ("cancelled", "r1")]
    assert leases.released == ["r1"]


async def test_the_lease_is_released_when_the_room_ends(
    registry_with: RegistryWith,
) -> None:
    leases = ScriptedLeases({"r1"})
    leased = registry_with(leases)
    registry = leased.registry
    await settle(lambda: registry._tg is not None)
    registry.ensure("r1")
    await settle(lambda: registry.joined == {"r1"})
    registry.stop("r1", "room finished")
    await settle(lambda: "r1" not in registry.rooms)
    assert leased.log == [("start", "r1"), ("stopped", "r1")]
    assert leases.released == ["r1"]
