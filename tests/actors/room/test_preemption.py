"""Preemptive generation on a fake room: the LLM starts on the likely-final words, and its
result is used when the FINAL says the same and thrown away when it does not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from prometheus_client import REGISTRY

from actors._events import EventType
from actors.providers import SpeechEvent, SpeechEventKind, SttStream
from actors.room import DataSettings, Providers, RoomActor, RoomSettings, RoomSpec, VoiceSettings
from actors.room._preempt import same_words
from tests.actors.room.test_actor import GatedTts, RecordingLlm, Store
from tests.fakes.clock import JumpClock
from tests.fakes.room import FakeParticipant, FakeRoom, FakeTrack, fake_track_audio

pytestmark = pytest.mark.anyio


class _Stream:
    def __init__(self, events: list[SpeechEvent]) -> None:
        self._script = events
        self._send, self._receive = anyio.create_memory_object_stream[SpeechEvent](64)

    async def send(self, pcm: bytes) -> None:
        script, self._script = self._script, []
        for event in script:
            await self._send.send(event)

    async def end_input(self) -> None:
        self._send.close()

    async def events(self) -> AsyncIterator[SpeechEvent]:
        async with self._receive:
            async for event in self._receive:
                yield event


class PreflightStt:
    """At the first audio: START, PREFLIGHT ``likely``, FINAL ``final``, END."""

    name = "preflight"

    def __init__(self, likely: str, final: str) -> None:
        self._events = [
            SpeechEvent(SpeechEventKind.START_OF_SPEECH, "", 0.3),
            SpeechEvent(SpeechEventKind.PREFLIGHT, likely),
            SpeechEvent(SpeechEventKind.FINAL, final, 1.0),
            SpeechEvent(SpeechEventKind.END_OF_SPEECH),
        ]

    @asynccontextmanager
    async def stream(self, *, language: str | None = None) -> AsyncIterator[SttStream]:
        stream = _Stream(list(self._events))
        try:
            yield stream
        finally:
            stream._send.close()

    async def aclose(self) -> None:
        pass


def outcome(name: str) -> float:
    value = REGISTRY.get_sample_value(
        "voice_supervisor_preemptive_generations_total", {"outcome": name}
    )
    return value or 0.0


async def converse(likely: str, final: str) -> tuple[list[str], RecordingLlm]:
    """alice says ``final`` (announced as ``likely``); the agent's replies and its LLM."""
    room = FakeRoom(
        metadata=json.dumps({"conversation_id": "c-1", "user_id": "u-1"}),
        people=[FakeParticipant("alice")],
    )
    store, llm = Store(), RecordingLlm()
    actor = RoomActor(
        RoomSpec("r-1", "ws://unused", "token"),
        RoomSettings(close_timeout_s=2),
        store,
        providers=Providers(PreflightStt(likely, final), llm, GatedTts()),
        voice=VoiceSettings(enabled=True),
        data=DataSettings(),
        clock=JumpClock(),
        room_factory=room.as_rtc_room,
        track_audio=fake_track_audio,
    )
    async with anyio.create_task_group() as tg:
        handle = await tg.start(actor.run)
        track = FakeTrack("TR_mic")
        room.emit("track_subscribed", track, track, room.remote_participants["alice"])
        await track.frames.send(bytes(640))
        turns = await store.wait_for(EventType.TURN, 2)
        await track.frames.aclose()
        handle.request_stop("test over")
    return [t["content"] for t in turns if t["role"] == "assistant"], llm


async def test_the_generation_started_early_is_used_when_the_final_agrees() -> None:
    used = outcome("used")
    replies, llm = await converse("Turn on the lights", "turn on the lights.")
    # The reply is the early call's (made on the words as first heard, capital T and all).
    assert replies == ["You said: Turn on the lights."]
    assert len(llm.calls) == 1
    assert [m.content for m in llm.calls[0]] == ["Turn on the lights"]
    assert outcome("used") == used + 1


async def test_the_generation_started_early_is_thrown_away_when_the_final_differs() -> None:
    discarded = outcome("discarded")
    replies, llm = await converse("turn on the lights", "turn off the lights")
    assert replies == ["You said: turn off the lights."]
    assert len(llm.calls) == 2  # the early call, then one on the final words
    assert llm.calls[1][-1].content == "turn off the lights"
    assert outcome("discarded") == discarded + 1


def test_same_words_ignores_case_and_punctuation() -> None:
    assert same_words("Turn on the lights.", "turn on the lights")
    assert not same_words("turn on the lights", "turn on the light")
