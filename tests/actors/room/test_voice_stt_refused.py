"""The voice stops reopening a recognition stream that every provider refused for good (a bad
key, a language the model does not have), and keeps reopening one that merely broke."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from actors import ProviderConnectionError, ProviderError, ProviderStatusError
from actors._events import EventType
from actors.providers import SttStream
from actors.room import DataSettings, Providers, RoomActor, RoomSettings, RoomSpec, VoiceSettings
from tests.actors.room.test_actor import GatedTts, RecordingLlm, Store
from tests.fakes.clock import JumpClock
from tests.fakes.room import FakeParticipant, FakeRoom, FakeTrack, fake_track_audio

pytestmark = pytest.mark.anyio


class RefusingStt:
    """Every stream refuses to open with ``error``; counts the attempts."""

    name = "refusing"

    def __init__(self, error: ProviderError) -> None:
        self.error = error
        self.opens = 0
        self.opened = anyio.Event()

    @asynccontextmanager
    async def stream(self, *, language: str | None = None) -> AsyncIterator[SttStream]:
        self.opens += 1
        self.opened.set()
        raise self.error
        yield  # pragma: no cover - never reached: the stream never opens

    async def aclose(self) -> None:
        pass


async def talk_while_the_voice_runs(stt: RefusingStt) -> None:
    room = FakeRoom(metadata=json.dumps({"conversation_id": "c-1"}), people=[FakeParticipant("a")])
    store, clock = Store(), JumpClock()
    actor = RoomActor(
        RoomSpec("r-1", "ws://unused", "token"),
        RoomSettings(close_timeout_s=2),
        store,
        providers=Providers(stt, RecordingLlm(), GatedTts(), greeting=""),
        voice=VoiceSettings(enabled=True),
        data=DataSettings(),
        clock=clock,
        room_factory=room.as_rtc_room,
        track_audio=fake_track_audio,
    )
    async with anyio.create_task_group() as tg:
        handle = await tg.start(actor.run)
        track = FakeTrack("TR_mic")
        room.emit("track_subscribed", track, track, room.remote_participants["a"])
        with anyio.fail_after(5):
            await stt.opened.wait()
        # The room goes on meanwhile (a typed turn is answered): time for any reopening.
        room.send_text("lk.chat", "a", "still there?")
        await store.wait_for(EventType.TURN, 2)
        await track.frames.aclose()
        handle.request_stop("test over")


async def test_a_final_refusal_is_not_reopened() -> None:
    stt = RefusingStt(ProviderStatusError("refused (HTTP 400)", vendor="dg", status=400))
    await talk_while_the_voice_runs(stt)
    assert stt.opens == 1


async def test_a_broken_stream_is_reopened() -> None:
    stt = RefusingStt(ProviderConnectionError("unreachable", vendor="dg"))
    await talk_while_the_voice_runs(stt)
    assert stt.opens > 1
