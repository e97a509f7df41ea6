"""Two agents of one room on two daemons (subprocesses, one livekit-server, one Redis, one
reference backend): one floor across daemons, each user turn stored once, and ``kill -9`` of the
daemon holding one agent brings that agent back elsewhere while the other keeps going."""

from __future__ import annotations

import json
from collections.abc import Awaitable

import anyio
import pytest
from livekit import api

from actors.persistence import EmbeddedStore
from supervisor.coordination import RedisStore
from tests.failover._fleet import Fleet, FleetSettings
from tests.harness.caller import Caller, caller
from tests.harness.ears import ears
from tests.harness.participants import joined
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.failover, pytest.mark.anyio]

AVA, SAM = "agent-ava", "agent-sam"
FLEET_SETTINGS = FleetSettings(
    lease_ttl_s=3.0,
    reconcile_interval_s=1.0,
    max_rooms_per_user=None,
    turns_per_minute_per_user=None,
    max_rooms=1,  # one actor per daemon: the room's two agents land on two daemons
    agents={
        "concierge": {"identity": AVA, "name": "Ava"},
        "specialist": {"identity": SAM, "name": "Sam", "speaks": "when_addressed"},
    },
)
ROOM = "team-fo"


async def holders(leases: RedisStore) -> tuple[str | None, str | None]:
    return (
        await leases.lease_holder(f"{ROOM}#agent=concierge"),
        await leases.lease_holder(f"{ROOM}#agent=specialist"),
    )


async def in_room(lk: api.LiveKitAPI) -> set[str]:
    resp = await lk.room.list_participants(api.ListParticipantsRequest(room=ROOM))
    return {p.identity for p in resp.participants}


async def chat(bot: Caller, text: str, agent: str, expect: str) -> None:
    seen = len(bot.captions)
    await bot.room.local_participant.send_text(text, topic="lk.chat")
    await bot.wait_for(
        lambda: any(
            c.final and c.sender == agent and expect in c.text for c in bot.captions[seen:]
        ),
        deadline_s=20,
        what=f"{agent}'s answer containing {expect!r}",
    )


async def test_two_agents_on_two_daemons_share_the_floor_and_fail_over_apart(
    fleet: Fleet, lk: api.LiveKitAPI, leases: RedisStore
) -> None:
    metadata = {"conversation_id": "c-team-fo", "agents": ["concierge", "specialist"]}
    await lk.room.create_room(api.CreateRoomRequest(name=ROOM, metadata=json.dumps(metadata)))
    ava_node, sam_node = await poll_until(
        lambda: _both(holders(leases)), deadline_s=30, what="both agents' leases"
    )
    assert ava_node != sam_node  # each daemon runs one actor: they are apart
    await poll_until(
        lambda: _has(in_room(lk), {AVA, SAM}), deadline_s=30, what="both agents in the room"
    )
    store = EmbeddedStore(fleet.backend_db)
    async with (
        caller(fleet.server, ROOM, "alice", agent_identity=AVA) as alice,
        ears(fleet.server, ROOM, (AVA, SAM)) as listener,
        joined(fleet.server, ROOM, "olga", attributes={"agent.role": "operator"}) as op,
    ):
        # Both named: both answer, one after the other through the floor in Redis.
        await chat(alice, "Ava and Sam, hello", AVA, "first you said: Ava and Sam, hello.")
        await alice.wait_for(
            lambda: any("Ava and Sam, hello" in t for t in alice.finals(SAM)),
            deadline_s=20,
            what="Sam's answer too",
        )
        await chat(alice, "Sam, and now?", SAM, "2 things so far")
        # A hand-over reaches the agent on the other daemon: the concierge (the room's first
        # agent) runs an operator's command, the specialist answers.
        await poll_until(  # the concierge knows the operator (its role) by now
            lambda: joins(store, "olga") >= 1, deadline_s=10, what="the operator known"
        )
        seen = len(alice.captions)
        command = {"id": "h1", "command": "hand_over", "to": "specialist"}
        await op.local_participant.send_text(json.dumps(command), topic="agent.command")
        await alice.wait_for(
            lambda: any(c.final and c.sender == SAM for c in alice.captions[seen:]),
            deadline_s=20,
            what="the specialist's answer to a hand-over from the other daemon",
        )
        await poll_until(
            lambda: listener.spans(AVA) and listener.spans(SAM), deadline_s=10, what="audio"
        )
        # kill -9 of the daemon that runs the concierge: another daemon takes it over.
        victim = fleet.daemons[str(ava_node)]
        killed_at = anyio.current_time()
        victim.kill9()
        await poll_until(
            lambda: _other_holder(leases, str(ava_node)), deadline_s=30, what="a new holder"
        )
        await poll_until(lambda: _has(in_room(lk), {AVA}), deadline_s=30, what="Ava back")
        print(f"concierge taken over in {anyio.current_time() - killed_at:.2f} s")  # noqa: T201
        assert (await holders(leases))[1] == sam_node  # the specialist never moved
        # The concierge that took over remembers the conversation (from the backend).
        await chat(alice, "Ava, still there?", AVA, "3 things so far; first you said: Ava and")
        assert listener.overlap_ms() == 0, listener.hand_overs_ms()
    victim.start()
    victim.wait_ready()
    # Each user turn reached the backend once, though both agents (two daemons) stored it.
    turns = await poll_until(
        lambda: (
            (m := store.recent_messages("c-team-fo", 50))
            and sum(t["role"] == "user" for t in m) >= 3
            and m
        ),
        deadline_s=10,
        what="the turns at the backend",
    )
    users = [t["content"] for t in turns if t["role"] == "user"]
    assert users == ["Ava and Sam, hello", "Sam, and now?", "Ava, still there?"]
    speakers = {t["speaker"] for t in turns if t["role"] == "assistant"}
    assert speakers == {"concierge", "specialist"}
    # Participant events are the room's lead agent's (the concierge) alone, not the
    # specialist's. The concierge that took over announced who was there again (as any
    # restarted agent does) under the same event id, one per connection: the backend kept one.
    # Its outbox ships in order, so once its answer after the takeover is stored, so is that.
    await poll_until(
        lambda: any(
            t["speaker"] == "concierge" and "3 things so far" in t["content"]
            for t in store.recent_messages("c-team-fo", 50)
        ),
        deadline_s=10,
        what="the answer of the concierge that took over, at the backend",
    )
    assert joins(store, "olga") == 1


def joins(store: EmbeddedStore, identity: str) -> int:
    return sum(e["data"]["identity"] == identity for e in store.events(["participant_connected"]))


async def _both(pending: Awaitable[tuple[str | None, str | None]]) -> tuple[str, str] | None:
    a, s = await pending
    return (a, s) if a and s else None


async def _has(pending: Awaitable[set[str]], identities: set[str]) -> bool:
    return identities <= await pending


async def _other_holder(leases: RedisStore, old: str) -> bool:
    holder = (await holders(leases))[0]
    return holder is not None and holder != old
