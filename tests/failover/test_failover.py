"""Three daemons as subprocesses on one livekit-server, one Redis and one reference backend:
one agent per room, takeover after ``kill -9`` with the conversation intact, a Redis restart
that changes nothing visible, and per-user limits that hold across daemons."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Iterator

import anyio
import pytest
from livekit import api

from actors.persistence import EmbeddedStore
from supervisor.coordination import RedisSettings, RedisStore
from tests.failover._fleet import DaemonProc, Fleet, FleetSettings
from tests.harness.caller import Caller, caller
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.failover, pytest.mark.anyio]

FLEET_SETTINGS = FleetSettings(lease_ttl_s=3.0, reconcile_interval_s=1.0)
# A new agent must be in the room within the lease TTL plus one reconcile interval; joining
# (connect, restore history) gets this much on top on a busy 2-core machine.
JOIN_ALLOWANCE_S = 4.0


@pytest.fixture
def running(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet with every daemon up before and after the test (a killed one is restarted)."""
    for daemon in fleet.daemons.values():
        if not daemon.alive:
            daemon.start()
    for daemon in fleet.daemons.values():
        daemon.wait_ready()
    yield fleet
    for daemon in fleet.daemons.values():
        if not daemon.alive:
            daemon.start()


async def create_room(lk: api.LiveKitAPI, name: str, **metadata: str) -> None:
    await lk.room.create_room(api.CreateRoomRequest(name=name, metadata=json.dumps(metadata)))


async def agents(lk: api.LiveKitAPI, room: str) -> list[str]:
    resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return sorted(p.identity for p in resp.participants if p.identity.startswith("agent-"))


async def one_agent(lk: api.LiveKitAPI, room: str, *, deadline_s: float = 20) -> str:
    found = await poll_until(
        lambda: _single(agents(lk, room)), deadline_s=deadline_s, what=f"one agent in {room}"
    )
    assert isinstance(found, str)
    return found


async def _single(listing: Awaitable[list[str]]) -> str | None:
    names = await listing
    return names[0] if len(names) == 1 else None


async def reconciles(daemons: list[DaemonProc], passes: int) -> None:
    """Wait until every daemon has reconciled ``passes`` more times (a quiet point)."""
    start = {d.name: d.metric("voice_supervisor_reconcile_total", result="ok") for d in daemons}

    def done() -> bool:
        return all(
            d.metric("voice_supervisor_reconcile_total", result="ok") >= start[d.name] + passes
            for d in daemons
        )

    await poll_until(
        lambda: anyio.to_thread.run_sync(done),
        deadline_s=passes * FLEET_SETTINGS.reconcile_interval_s * 4 + 10,
        what=f"{passes} reconcile passes on every daemon",
    )


async def chat(bot: Caller, text: str, expect: str, *, deadline_s: float = 15) -> str:
    """Type ``text`` on lk.chat and return the agent's final caption containing ``expect``."""
    seen = len(bot.captions)
    await bot.room.local_participant.send_text(text, topic="lk.chat")

    def answer() -> str | None:
        for c in bot.captions[seen:]:
            if c.final and c.sender.startswith("agent-") and expect in c.text:
                return c.sender
        return None

    await bot.wait_for(answer, deadline_s=deadline_s, what=f"an answer containing {expect!r}")
    sender = answer()
    assert sender is not None
    return sender


def backend(fleet: Fleet) -> EmbeddedStore:
    return EmbeddedStore(fleet.backend_db)


async def test_exactly_one_agent_per_room_across_ten_rooms(
    running: Fleet, lk: api.LiveKitAPI, leases: RedisStore
) -> None:
    rooms = [f"fo-ten-{i}" for i in range(10)]
    for room in rooms:
        await create_room(lk, room, conversation_id=f"c-{room}")
    owners = {room: await one_agent(lk, room) for room in rooms}
    # Two more reconcile passes on every daemon: each tried every room again, and lost.
    await reconciles(list(running.daemons.values()), 2)
    for room in rooms:
        assert await agents(lk, room) == [owners[room]]
        holder = await leases.lease_holder(room)
        assert holder is not None and f"agent-{holder}" == owners[room]
    held = {d.name: d.readyz()[1]["redis"]["leases"] for d in running.daemons.values()}
    assert sum(held.values()) == 10
    assert sum(1 for n in held.values() if n) >= 2, held  # the least-loaded daemons go first
    print(f"leases held per daemon: {held}")  # noqa: T201  # shown with -s
    for d in running.daemons.values():
        assert d.metric("voice_supervisor_lease_claims_total", result="held_elsewhere") > 0


async def test_kill_9_of_the_owner_hands_the_room_over_with_its_history(
    running: Fleet, lk: api.LiveKitAPI, leases: RedisStore
) -> None:
    room = "fo-kill"
    await create_room(lk, room, conversation_id="c-kill", user_id="u-kill")
    first = await one_agent(lk, room)
    store = backend(running)
    async with caller(running.server, room, "ada", agent_identity=first) as ada:
        assert await chat(ada, "my name is Ada", "first you said: my name is Ada") == first
        # The turn and the answer reached the backend: what a new agent can restore.
        await poll_until(
            lambda: len(store.recent_messages("c-kill", 10)) >= 2,
            deadline_s=10,
            what="the conversation stored by the backend",
        )
        owner = running.by_identity(first)
        owner.kill9()
        killed_at = anyio.current_time()
        second = await poll_until(
            lambda: _new_agent(lk, room, first),
            deadline_s=FLEET_SETTINGS.lease_ttl_s
            + FLEET_SETTINGS.reconcile_interval_s
            + JOIN_ALLOWANCE_S,
            what="another daemon's agent in the room",
        )
        takeover_s = anyio.current_time() - killed_at
        assert second != first
        assert await leases.lease_holder(room) == second.removeprefix("agent-")
        # Its next answer uses what was said to the dead daemon's agent.
        reply_by = await chat(ada, "what is my name?", "2 things so far; first you said: my name")
        assert reply_by == second
    joined = [e for e in store.events(["agent_joined"]) if e["conversation_id"] == "c-kill"]
    assert joined[-1]["data"]["identity"] == second
    assert joined[-1]["data"]["restored_messages"] >= 2
    print(f"takeover after kill -9: {takeover_s:.2f}s")  # noqa: T201  # shown with -s


async def _new_agent(lk: api.LiveKitAPI, room: str, old: str) -> str | None:
    found = [a for a in await agents(lk, room) if a != old]
    return found[0] if found else None


async def test_a_redis_restart_during_a_conversation_changes_nothing_visible(
    running: Fleet, lk: api.LiveKitAPI, leases: RedisStore
) -> None:
    room = "fo-redis"
    await create_room(lk, room, conversation_id="c-redis", user_id="u-redis")
    agent = await one_agent(lk, room)
    daemons = list(running.daemons.values())
    async with caller(running.server, room, "bea", agent_identity=agent) as bea:
        await chat(bea, "hello before", "first you said: hello before")
        running.redis.stop()  # every key is gone: leases, limits, the epoch marker
        running.redis.start()
        assert await chat(bea, "hello after", "2 things so far") == agent
        await poll_until(
            lambda: leases.lease_holder(room),
            deadline_s=FLEET_SETTINGS.lease_ttl_s,
            what="the owner re-claiming its lease",
        )
        assert await leases.lease_holder(room) == agent.removeprefix("agent-")
        # Past the hold-off (one TTL), every daemon has tried the room again and lost.
        passes = int(FLEET_SETTINGS.lease_ttl_s / FLEET_SETTINGS.reconcile_interval_s) + 2
        await reconciles(daemons, passes)
        assert await agents(lk, room) == [agent]
        assert all(d.readyz()[0] == 200 for d in daemons)
        assert (
            sum(d.metric("voice_supervisor_lease_losses_total", reason="taken") for d in daemons)
            == 0
        )


async def test_per_user_limits_hold_across_daemons(
    running: Fleet, lk: api.LiveKitAPI, leases: RedisStore
) -> None:
    # One user, two rooms, each on its own daemon; at most 1 room and 2 answers a minute.
    room_a, room_b = "fo-only-a-lim", "fo-only-b-lim"
    await create_room(lk, room_a, conversation_id="c-lim-a", user_id="u-lim")
    await create_room(lk, room_b, conversation_id="c-lim-b", user_id="u-lim")
    assert await one_agent(lk, room_a) == "agent-a"
    assert await one_agent(lk, room_b) == "agent-b"
    room_msg = RedisSettings().room_limit_message
    turn_msg = RedisSettings().turn_limit_message
    async with (
        caller(running.server, room_a, "cy-1", agent_identity="agent-a") as in_a,
        caller(running.server, room_b, "cy-2", agent_identity="agent-b") as in_b,
    ):
        await chat(in_a, "one", "first you said: one")
        # Daemon b tells the user its room is one too many (spoken and captioned).
        await chat(in_b, "two", room_msg[:40])
        await chat(in_a, "three", "first you said: one")
        await chat(in_a, "four", turn_msg[:30])  # the third answer within a minute
        # The room on daemon a ends: daemon b's room may converse, but the minute's answers
        # were spent on daemon a.
        await lk.room.delete_room(api.DeleteRoomRequest(room=room_a))
        await poll_until(  # its agent left, freeing the user's place, then the lease
            lambda: _released(leases, room_a), deadline_s=10, what="room a's lease released"
        )
        await chat(in_b, "five", turn_msg[:30])
    refusals = {
        d.name: (
            d.metric("voice_supervisor_user_limit_refusals_total", limit="rooms"),
            d.metric("voice_supervisor_user_limit_refusals_total", limit="turns"),
        )
        for d in running.daemons.values()
    }
    assert refusals["a"][1] >= 1 and refusals["b"][0] >= 1 and refusals["b"][1] >= 1


async def _released(leases: RedisStore, room: str) -> bool:
    return await leases.lease_holder(room) is None
