"""Several agents per room: profiles in config, the metadata's choice, one supervised actor
per (room, agent), each restarted and given up on by itself."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable

import anyio
import pytest
from anyio.abc import TaskStatus

from actors import ActorCrashed, ConfigError
from actors.room import ActorKey, AgentProfile, RoomHandle, RoomSpec, Speaks, room_agents
from supervisor import RoomRegistry, SupervisorSettings, parse_config

FAST = SupervisorSettings(
    restart_backoff_initial_s=0.001, restart_backoff_max_s=0.01, max_restarts=2, max_rooms=10
)
PROFILES = {
    "concierge": AgentProfile(identity="a-concierge"),
    "notes": AgentProfile(identity="a-notes", speaks=Speaks.NEVER),
}


def test_profiles_are_validated_strictly_with_the_key_and_the_fix_named() -> None:
    cfg = parse_config(
        {"agents": {"notes": {"identity": "n", "speaks": "never", "name": "Notes"}}}, environ={}
    )
    assert cfg.profile("notes").speaks is Speaks.NEVER
    assert cfg.profile("").identity == cfg.agent.identity  # [agent] is the default profile
    assert list(cfg.profiles()) == ["", "notes"]
    cases = {
        "Notes": ({"Notes": {"identity": "n"}}, "use lowercase letters"),
        "same identity": ({"notes": {"identity": "voice-agent"}}, "already [agent]'s"),
        "unknown key": ({"notes": {"identity": "n", "speak": "never"}}, "allowed keys here: "),
        "bad policy": ({"notes": {"identity": "n", "speaks": "sometimes"}}, "when_addressed"),
        "no identity": ({"notes": {}}, "notes.identity"),
    }
    for case, (agents, expected) in cases.items():
        with pytest.raises(ConfigError) as info:
            parse_config({"agents": agents}, environ={})
        assert expected in str(info.value), case


def test_the_metadata_picks_known_profiles_in_order_and_skips_unknown_ones() -> None:
    assert room_agents("", PROFILES) == ("",)
    assert room_agents('{"conversation_id": "c"}', PROFILES) == ("",)
    assert room_agents('{"agents": ["notes", "concierge", "notes"]}', PROFILES) == (
        "notes",
        "concierge",
    )
    assert room_agents('{"agents": ["ghost", "notes"]}', PROFILES) == ("notes",)
    assert room_agents('{"agents": ["ghost"]}', PROFILES) == ("",)  # never no agent at all
    assert room_agents('{"agents": "notes"}', PROFILES) == ("",)
    assert room_agents("not json", PROFILES) == ("",)


class Scripted:
    """Joins at once; the agents named in ``crash`` fail after joining."""

    def __init__(self, spec: RoomSpec, crash: set[str], log: list[ActorKey]) -> None:
        self.spec, self._crash, self._log = spec, crash, log
        self._send, self._inbox = anyio.create_memory_object_stream[object](8)

    async def run(self, *, task_status: TaskStatus[RoomHandle] = anyio.TASK_STATUS_IGNORED) -> None:
        with self._send, self._inbox:
            self._log.append(self.spec.key)
            stop = anyio.Event()
            task_status.started(RoomHandle(self.spec.room, "c", self._send, stop))
            if self.spec.agent in self._crash:
                raise ActorCrashed("scripted crash")
            await stop.wait()


@pytest.fixture
async def registry() -> AsyncIterator[tuple[RoomRegistry, list[ActorKey], set[str]]]:
    log: list[ActorKey] = []
    crash: set[str] = set()
    registry = RoomRegistry(
        FAST,
        lambda room, agent, n: RoomSpec(room, "ws://x", "t", n, agent),
        lambda spec: Scripted(spec, crash, log),
    )
    async with anyio.create_task_group() as tg:
        await tg.start(registry.run)
        yield registry, log, crash
        tg.cancel_scope.cancel()


async def settle(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.wait_all_tasks_blocked()
            await anyio.lowlevel.checkpoint()


async def test_each_agent_of_a_room_is_supervised_on_its_own(
    registry: tuple[RoomRegistry, list[ActorKey], set[str]],
) -> None:
    reg, log, crash = registry
    crash.add("notes")
    reg.ensure("r", agent="concierge")
    reg.ensure("r", agent="notes")
    await settle(lambda: ActorKey("r", "notes") not in reg.actors)
    starts = Counter(log)
    assert starts[ActorKey("r", "notes")] == FAST.max_restarts + 1  # then given up, alone
    assert starts[ActorKey("r", "concierge")] == 1
    assert reg.actors == {ActorKey("r", "concierge")} and reg.joined == {"r"}
    reg.ensure("r", agent="notes")  # given up: not again until the room ends
    assert ActorKey("r", "notes") not in reg.actors
    reg.stop("r", "room finished")  # a room's end stops every agent of it
    await settle(lambda: not reg.actors)
    crash.clear()
    reg.ensure("r", agent="notes")
    await settle(lambda: reg.actors == {ActorKey("r", "notes")})


def test_lease_names_keep_the_default_agents_and_tell_the_others_apart() -> None:
    assert ActorKey("r").lease_name() == "r"
    assert ActorKey("r", "notes").lease_name() == "r#agent=notes"
    assert ActorKey("r", "notes").task_name() == "room:r:notes"
