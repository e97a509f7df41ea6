"""Several agents in one room on one daemon, on the real server: a concierge that talks, a
specialist that answers when named or handed over to, and a note-taker that never speaks."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from livekit import api

from actors.persistence import EmbeddedStore
from actors.room import ActorKey, Providers
from supervisor import Daemon
from tests.conftest import daemon_config
from tests.e2e.conftest import tone
from tests.fakes.instant import ToneTts
from tests.fakes.team import HandOverLlm, TeamStt
from tests.harness.caller import Caller, caller
from tests.harness.ears import Ears, ears
from tests.harness.livekit_server import LiveKitServer
from tests.harness.participants import joined
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AVA, SAM, NOTES = "agent-ava", "agent-sam", "agent-notes"
PROFILES = {
    "concierge": {"identity": AVA, "name": "Ava"},
    "specialist": {"identity": SAM, "name": "Sam", "speaks": "when_addressed"},
    "notes": {"identity": NOTES, "name": "Notes", "speaks": "never"},
}
GREETING = "Hi, I am Ava."


@dataclass
class Team:
    daemon: Daemon
    stt: TeamStt
    llm: HandOverLlm
    store: EmbeddedStore


@pytest.fixture
async def team(
    livekit_server: LiveKitServer, webhook_port: int, tmp_path: Path
) -> AsyncIterator[Team]:
    stt, llm = TeamStt(silence_ms=200), HandOverLlm({"mortgage": "Sam"})
    config = daemon_config(
        livekit_server,
        webhook_port,
        tmp_path / "data",
        voice={"enabled": True, "min_interrupt_s": 0.3},
        agents=PROFILES,
    )
    providers = Providers(stt, llm, ToneTts(ms_per_word=60), greeting=GREETING)
    daemon = Daemon(config, providers=providers)
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        yield Team(daemon, stt, llm, EmbeddedStore(config.persistence.store_path))
        daemon.request_stop()


async def say(alice: Caller, team: Team, text: str) -> None:
    team.stt.lines.append(text)
    await alice.say(tone(0.6), 48_000)


def answers(alice: Caller, agent: str) -> list[str]:
    return alice.finals(agent)


async def test_two_agents_share_one_floor_one_history_and_answer_when_addressed(
    team: Team, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    room = "team-1"
    metadata = {"conversation_id": "c-team", "user_id": "u", "agents": [*PROFILES, "ghost"]}
    await lkapi.room.create_room(api.CreateRoomRequest(name=room, metadata=json.dumps(metadata)))
    registry = team.daemon.registry
    assert registry is not None
    # Only this room's actors: rooms an earlier module left on the shared server may be joined.

    def mine() -> list[str]:
        return sorted(k.agent for k in registry.actors if k.room == room)

    await poll_until(lambda: len(mine()) == 3, deadline_s=10, what="three agents")
    listener: Ears
    async with (
        caller(livekit_server, room, "alice", agent_identity=AVA) as alice,
        ears(livekit_server, room, (AVA, SAM, NOTES)) as listener,
        joined(livekit_server, room, "olga", attributes={"agent.role": "operator"}) as operator,
    ):
        # Each agent joined with its own identity and display name; the ghost was skipped.
        names = {p.identity: p.name for p in alice.room.remote_participants.values()}
        assert {AVA: "Ava", SAM: "Sam", NOTES: "Notes"}.items() <= names.items()
        await alice.wait_for(lambda: GREETING in answers(alice, AVA), deadline_s=10, what="hi")

        # Named by nobody: the concierge answers.
        await say(alice, team, "what time is it")
        await alice.wait_for(
            lambda: "You said: what time is it." in answers(alice, AVA),
            deadline_s=10,
            what="the concierge's answer",
        )
        # Named: the specialist answers, the concierge does not.
        await say(alice, team, "Sam what is the rate today")
        await alice.wait_for(
            lambda: "You said: Sam what is the rate today." in answers(alice, SAM),
            deadline_s=10,
            what="the specialist's answer",
        )
        # A reply that hands over: the concierge passes the question to the specialist.
        await say(alice, team, "I have a mortgage question")
        await alice.wait_for(
            lambda: "You said: I have a mortgage question." in answers(alice, SAM),
            deadline_s=10,
            what="the specialist's answer after the hand-over",
        )
        assert "That is one for Sam. Over to you, Sam." in answers(alice, AVA)
        # An operator's command hands over too: the specialist answers the conversation again.
        before = answers(alice, SAM).count("You said: I have a mortgage question.")
        command = {"id": "h1", "command": "hand_over", "to": "specialist"}
        await operator.local_participant.send_text(json.dumps(command), topic="agent.command")
        await alice.wait_for(
            lambda: answers(alice, SAM).count("You said: I have a mortgage question.") > before,
            deadline_s=10,
            what="the specialist's answer to the hand_over command",
        )

    # The listener never spoke: no caption, no audible frame, not even a track.
    assert answers(alice, NOTES) == [] and not listener.voiced.get(NOTES)
    published = {i: len(p.track_publications) for i, p in alice.room.remote_participants.items()}
    assert {AVA: 1, SAM: 1, NOTES: 0}.items() <= published.items()
    assert mine() == ["concierge", "notes", "specialist"]
    assert sorted(set(listener.voiced) - {NOTES}) == [AVA, SAM]
    # The caller never heard two agents at once (measured on the subscribed tracks).
    assert listener.spans(AVA) and listener.spans(SAM)
    assert listener.overlap_ms() == 0, (listener.overlap_ms(), listener.hand_overs_ms())
    assert answers(alice, AVA).count("You said: Sam what is the rate today.") == 0

    # One history at the backend: each user turn once, agent turns tagged with their names.
    turns = await poll_until(
        lambda: (m := team.store.recent_messages("c-team", 50)) and len(m) >= 8 and m,
        deadline_s=5,
        what="turns stored",
    )
    users = [t["content"] for t in turns if t["role"] == "user"]
    assert users == ["what time is it", "Sam what is the rate today", "I have a mortgage question"]
    speakers = [(t["speaker"], t["content"]) for t in turns if t["role"] == "assistant"]
    assert speakers[:5] == [
        ("concierge", GREETING),
        ("concierge", "You said: what time is it."),
        ("specialist", "You said: Sam what is the rate today."),
        ("concierge", "That is one for Sam. Over to you, Sam."),
        ("specialist", "You said: I have a mortgage question."),
    ]
    await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))
    sessions = await poll_until(
        lambda: len(e := team.store.events(["session"])) >= 3 and e, deadline_s=10, what="sessions"
    )
    assert sorted(s["data"]["agent"] for s in sessions) == ["concierge", "notes", "specialist"]
    assert all(s["data"]["agents"] == list(PROFILES) for s in sessions)
    # Participant events are the room's: stored once (by its lead agent, the concierge, which
    # sees the other agents join too), not once per agent.
    people = team.store.events(["participant_connected", "participant_disconnected"])
    seen = Counter((e["type"], e["data"]["identity"]) for e in people)
    kinds = ("participant_connected", "participant_disconnected")
    assert seen == {(k, i): 1 for k in kinds for i in ("alice", "olga", "ears", SAM, NOTES)}


async def test_a_listener_alone_publishes_no_track_and_still_hears_and_records(
    team: Team, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    room = "team-notes"
    metadata = {"conversation_id": "c-notes", "user_id": "u", "agents": ["notes"]}
    await lkapi.room.create_room(api.CreateRoomRequest(name=room, metadata=json.dumps(metadata)))
    async with caller(livekit_server, room, "alice", agent_identity=NOTES) as alice:
        await say(alice, team, "note that the rate is fixed")
        turns = await poll_until(
            lambda: team.store.recent_messages("c-notes", 10),
            deadline_s=10,
            what="the user's turn stored by the listener",
        )
        assert [(t["role"], t["content"]) for t in turns] == [
            ("user", "note that the rate is fixed")
        ]
        notes = alice.room.remote_participants[NOTES]
        assert not notes.track_publications and answers(alice, NOTES) == []


async def test_a_rooms_agents_run_together_on_one_worker_process(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> None:
    config = daemon_config(
        livekit_server,
        webhook_port,
        tmp_path / "data",
        supervisor={"workers": 2, "rooms_per_worker": 10},
        voice={"enabled": True, "providers_factory": "tests.fakes.instant:providers"},
        llm={"greeting": ""},
        agents=PROFILES,
    )
    daemon = Daemon(config)
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        rooms = ["team-w0", "team-w1"]
        for room in rooms:
            metadata = {"conversation_id": f"c-{room}", "agents": ["concierge", "specialist"]}
            await lkapi.room.create_room(
                api.CreateRoomRequest(name=room, metadata=json.dumps(metadata))
            )
        registry, pool = daemon.registry, daemon.pool
        assert registry is not None and pool is not None

        def ours() -> list[ActorKey]:
            return [k for k in registry.actors if k.room in rooms]

        await poll_until(lambda: len(ours()) == 4, deadline_s=30, what="four agents")
        await poll_until(lambda: set(rooms) <= registry.joined, deadline_s=30, what="joined")
        # Both agents of a room on one worker (they share its floor and history there).
        for room in rooms:
            hosts = {w.worker_id for w in pool.workers for key in w.rooms if key.room == room}
            assert len(hosts) == 1, (room, hosts)
        async with caller(livekit_server, "team-w0", "bob", agent_identity=SAM) as bob:
            await bob.room.local_participant.send_text("Sam, are you there", topic="lk.chat")
            await bob.wait_for(
                lambda: "You said: Sam, are you there." in answers(bob, SAM),
                deadline_s=15,
                what="the specialist's answer from its worker",
            )
            assert answers(bob, AVA) == []
        daemon.request_stop()


async def test_a_profile_with_its_own_llm_answers_with_it_and_the_other_agent_does_not(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> None:
    own = {**PROFILES["specialist"], "llm": {"echo_prefix": "Sam heard: ", "timeout_s": 5}}
    config = daemon_config(
        livekit_server,
        webhook_port,
        tmp_path / "data",
        voice={"enabled": True},
        llm={"greeting": ""},
        agents={"concierge": PROFILES["concierge"], "specialist": own},
    )
    providers = Providers(TeamStt(silence_ms=200), HandOverLlm({}), ToneTts(ms_per_word=30))
    daemon = Daemon(config, providers=providers)
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        room = "team-own-llm"
        metadata = {"conversation_id": "c-own", "agents": ["concierge", "specialist"]}
        await lkapi.room.create_room(
            api.CreateRoomRequest(name=room, metadata=json.dumps(metadata))
        )
        async with caller(livekit_server, room, "bob", agent_identity=SAM) as bob:
            await poll_until(
                lambda: {AVA, SAM} <= set(bob.room.remote_participants),
                deadline_s=15,
                what="both agents in the room",
            )
            # The specialist's own [agents.specialist.llm] (the scripted model, another prefix).
            await bob.room.local_participant.send_text("Sam, are you there", topic="lk.chat")
            await bob.wait_for(
                lambda: any(a.startswith("Sam heard: Sam") for a in answers(bob, SAM)),
                deadline_s=15,
                what="the specialist's answer from its own model",
            )
            # The concierge still answers with the shared one.
            await bob.room.local_participant.send_text("what time is it", topic="lk.chat")
            await bob.wait_for(
                lambda: "You said: what time is it." in answers(bob, AVA),
                deadline_s=15,
                what="the concierge's answer from the shared model",
            )
            assert not any(a.startswith("Sam heard:") for a in answers(bob, AVA))
        daemon.request_stop()
