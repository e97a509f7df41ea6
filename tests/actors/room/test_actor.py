"""The room actor and its voice on a fake room and a manual clock: no server, no wall time."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import numpy as np
import pytest

from actors._events import Event, EventType
from actors.providers import ChatMessage
from actors.room import (
    DataSettings,
    Providers,
    RoomActor,
    RoomHandle,
    RoomSettings,
    RoomSpec,
    VoiceSettings,
)
from tests.fakes.clock import JumpClock
from tests.fakes.instant import EchoLlm, InstantStt
from tests.fakes.room import FakeParticipant, FakeRoom, FakeTrack, fake_track_audio

pytestmark = pytest.mark.anyio


class Store:
    """The persistence port: keeps every event, and tells who waits for one."""

    def __init__(self, history: list[dict[str, Any]] | None = None) -> None:
        self.events: list[Event] = []
        self.history = history or []
        self._changed = anyio.Event()

    def emit(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = anyio.Event()

    async def agent_joined(self, room: str, metadata: dict[str, Any]) -> str:
        return "c-from-backend"

    async def recent_messages(self, conversation_id: str, limit: int) -> list[dict[str, Any]]:
        return self.history[-limit:]

    def of(self, type_: EventType) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.type is type_]

    async def wait_for(self, type_: EventType, count: int = 1) -> list[dict[str, Any]]:
        with anyio.fail_after(5):
            while len(found := self.of(type_)) < count:
                await self._changed.wait()
            return found


class RecordingLlm(EchoLlm):
    def __init__(self) -> None:
        super().__init__()
        self.instructions: list[str | None] = []

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        self.instructions.append(instructions)
        async for delta in super().complete(messages, instructions=instructions):
            yield delta


class GatedTts:
    """20 ms of tone per word; the sentence named ``hold`` waits for ``release``."""

    name = "gated"
    sample_rate = 24_000

    def __init__(self, hold: str = "") -> None:
        self.hold = hold
        self.release = anyio.Event()
        self.holding = anyio.Event()
        self.voices: list[str | None] = []

    async def synthesize(
        self, text: str, *, voice: str | None = None, language: str | None = None
    ) -> AsyncGenerator[bytes]:
        self.voices.append(voice)
        if self.hold and self.hold in text:
            self.holding.set()
            await self.release.wait()
        yield np.full(480 * len(text.split()), 4000, dtype=np.int16).tobytes()

    async def aclose(self) -> None:
        pass


@dataclass
class Rig:
    room: FakeRoom
    store: Store
    handle: RoomHandle
    llm: RecordingLlm
    tts: GatedTts
    clock: JumpClock


OPERATOR = {"agent.role": "operator"}


@asynccontextmanager
async def running(
    *,
    metadata: dict[str, Any] | None = None,
    people: list[FakeParticipant] | None = None,
    voice: bool = True,
    tts: GatedTts | None = None,
    history: list[dict[str, Any]] | None = None,
) -> AsyncIterator[Rig]:
    room = FakeRoom(
        metadata=json.dumps({"conversation_id": "c-1", "user_id": "u-1"} | (metadata or {})),
        people=people,
    )
    store, llm, gated, clock = Store(history), RecordingLlm(), tts or GatedTts(), JumpClock()
    actor = RoomActor(
        RoomSpec("r-1", "ws://unused", "token"),
        RoomSettings(close_timeout_s=2),
        store,
        providers=Providers(InstantStt(start_ms=20, interim_ms=40), llm, gated, greeting="Hi."),
        voice=VoiceSettings(enabled=voice, min_interrupt_s=0.05),
        data=DataSettings(),
        clock=clock,
        room_factory=room.as_rtc_room,
        track_audio=fake_track_audio,
    )
    async with anyio.create_task_group() as tg:
        handle = await tg.start(actor.run)
        yield Rig(room, store, handle, llm, gated, clock)
        handle.request_stop("test over")


async def test_joining_reads_the_metadata_and_the_people_already_there() -> None:
    async with running(
        people=[FakeParticipant("alice", attributes={"x": "1"})], voice=False
    ) as rig:
        assert rig.room.connected
        joined = rig.store.of(EventType.AGENT_JOINED)
        assert joined[0]["user_id"] == "u-1" and joined[0]["identity"] == "voice-agent"
        people = rig.store.of(EventType.PARTICIPANT_CONNECTED)
        assert [(p["identity"], p["attributes"]) for p in people] == [("alice", {"x": "1"})]
        assert all(e.conversation_id == "c-1" for e in rig.store.events)


async def test_people_come_and_go_and_the_session_summary_says_so() -> None:
    async with running(voice=False) as rig:
        rig.room.join(FakeParticipant("bob", name="Bob"))
        await rig.store.wait_for(EventType.PARTICIPANT_CONNECTED)
        rig.room.leave("bob")
        left = await rig.store.wait_for(EventType.PARTICIPANT_DISCONNECTED)
        assert left[0]["identity"] == "bob"
        rig.room.send_text("lk.chat", "bob", "typed while away")
        rig.handle.request_stop("test over")
        session = (await rig.store.wait_for(EventType.SESSION))[0]
    assert session["end_reason"] == "test over"
    assert [p["identity"] for p in session["participants"]] == ["bob"]
    assert session["participants"][0]["left_at"] is not None
    assert rig.room.disconnected.is_set()


async def test_a_restarted_actor_announces_who_is_there_under_the_same_event_ids() -> None:
    """The backend keeps one event per id: a caller still there when the next actor joins is
    stored once, and their real departure after the first actor's "agent_left" is stored too."""
    lives: list[dict[tuple[str, EventType], str]] = []
    for life in range(2):
        people = [FakeParticipant("alice", sid="PA_alice"), FakeParticipant("bob")]  # bob: no sid
        async with running(people=people, voice=False) as rig:
            await rig.store.wait_for(EventType.PARTICIPANT_CONNECTED, 2)
            if life == 1:
                rig.room.leave("alice")
                await rig.store.wait_for(EventType.PARTICIPANT_DISCONNECTED)
        kinds = (EventType.PARTICIPANT_CONNECTED, EventType.PARTICIPANT_DISCONNECTED)
        lives.append(
            {(e.data["identity"], e.type): e.id for e in rig.store.events if e.type in kinds}
        )
    first, second = lives
    joined, left = EventType.PARTICIPANT_CONNECTED, EventType.PARTICIPANT_DISCONNECTED
    assert first[("alice", joined)] == second[("alice", joined)]
    assert first[("alice", left)] != second[("alice", left)]  # agent_left, then a real departure
    assert first[("bob", joined)] != second[("bob", joined)]  # no sid: a fresh id each time


async def test_a_metadata_change_reaches_the_next_reply() -> None:
    async with running(people=[FakeParticipant("alice")]) as rig:
        await rig.store.wait_for(EventType.TURN, 1)  # the greeting
        rig.room.send_text("lk.chat", "alice", "first")
        await rig.store.wait_for(EventType.TURN, 3)
        rig.room.emit(
            "room_metadata_changed",
            "",
            json.dumps({"conversation_id": "c-1", "instructions": "Be brief.", "voice": "v2"}),
        )
        rig.room.send_text("lk.chat", "alice", "second", stream_id="ST_2")
        await rig.store.wait_for(EventType.TURN, 5)
    assert rig.llm.instructions == [None, "Be brief."]
    assert rig.tts.voices[-1] == "v2" and rig.tts.voices[0] is None


async def test_commands_come_through_the_mailbox_and_need_their_role() -> None:
    people = [FakeParticipant("op", attributes=OPERATOR), FakeParticipant("guest")]
    async with running(people=people) as rig:
        command = {"id": "i1", "command": "instructions", "text": "Speak French."}
        rig.room.send_text("agent.command", "guest", json.dumps(command))
        refused = await rig.room.wait_for(rig.room.replies)
        assert refused[0]["id"] == "i1" and not refused[0]["ok"]
        rig.room.send_text("agent.command", "op", json.dumps(command | {"id": "i2"}))
        await rig.room.wait_for(lambda: len(rig.room.replies()) == 2)
        assert rig.room.replies()[1] == {"id": "i2", "ok": True, "error": None}
        rig.room.send_text("lk.chat", "guest", "hello")
        await rig.store.wait_for(EventType.TURN, 3)
        status = {"id": "s1", "command": "status"}
        rig.room.send_text("agent.command", "op", json.dumps(status))
        reply = (await rig.room.wait_for(lambda: rig.room.replies()[2:]))[0]
    assert rig.llm.instructions[-1] == "Speak French."
    assert reply["participants"] == ["guest", "op"] and reply["you"]["role"] == "operator"


async def test_barge_in_records_only_what_was_played() -> None:
    tts = GatedTts(hold="rest")
    async with running(people=[FakeParticipant("alice")], tts=tts) as rig:
        track = FakeTrack("TR_mic")
        rig.room.emit("track_subscribed", track, track, rig.room.remote_participants["alice"])
        await rig.store.wait_for(EventType.TURN, 1)  # the greeting, unheld
        rig.room.send_text("lk.chat", "alice", "one. the rest of it")
        with anyio.fail_after(5):
            await tts.holding.wait()
        loud = np.full(640, 6000, dtype=np.int16).tobytes()  # 40 ms at 16 kHz
        for _ in range(5):
            rig.clock.t += 0.04  # the first sentence plays while alice speaks
            await track.frames.send(loud)
        turns = await rig.store.wait_for(EventType.TURN, 3)
        tts.release.set()
        await track.frames.aclose()
    reply = turns[2]
    assert reply["role"] == "assistant" and reply["interrupted"] is True
    assert reply["content"] == "You said: one."


async def test_unstorable_metadata_is_ignored_and_the_backend_names_the_conversation() -> None:
    async with running(metadata={"conversation_id": "\ud800"}, voice=False) as rig:
        joined = rig.store.of(EventType.AGENT_JOINED)
    assert joined[0]["metadata"] == {} and rig.store.events[0].conversation_id == "c-from-backend"


def said(role: str, content: str, ts: float) -> dict[str, Any]:
    return {"role": role, "content": content, "ts": ts, "speaker": "alice", "interrupted": False}


async def test_an_unanswered_resumed_turn_is_answered_once_instead_of_a_greeting() -> None:
    # The previous actor stored alice's turn and died before its answer.
    history = [said("assistant", "Hi.", 1.0), said("user", "what time is it", 2.0)]
    async with running(people=[FakeParticipant("alice")], history=history) as rig:
        answer = (await rig.store.wait_for(EventType.TURN))[0]
        rig.room.join(FakeParticipant("bob"))
        await rig.store.wait_for(EventType.PARTICIPANT_CONNECTED, 2)
    turns = rig.store.of(EventType.TURN)
    assert [(t["role"], t["content"]) for t in turns] == [
        ("assistant", "You said: what time is it.")
    ]
    assert answer["interrupted"] is False and len(rig.tts.voices) == 1  # one reply spoken


async def test_a_resumed_conversation_that_was_answered_is_not_answered_again() -> None:
    history = [said("user", "hello", 1.0), said("assistant", "You said: hello.", 2.0)]
    async with running(people=[FakeParticipant("alice")], history=history) as rig:
        rig.room.send_text("lk.chat", "alice", "and now")
        turns = await rig.store.wait_for(EventType.TURN, 2)
    assert [(t["role"], t["content"]) for t in turns] == [
        ("user", "and now"),
        ("assistant", "You said: and now."),
    ]
