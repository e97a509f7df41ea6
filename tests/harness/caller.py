"""A caller bot: a real participant that speaks into a room and hears the agent.

It publishes a microphone track fed continuously (silence when idle, like a real microphone),
records the agent's audio, and collects every caption on ``lk.transcription``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import numpy as np
from anyio.abc import TaskGroup
from livekit import rtc

from tests.harness.participants import ServerAccess, participant_token

MIC_RATE = 48_000
FRAME_MS = 20
AGENT_RATE = 16_000
_VOICE_PEAK = 1000.0  # int16 peak above which a frame of the agent's audio counts as voice


@dataclass(frozen=True)
class Caption:
    sender: str
    text: str
    final: bool
    segment_id: str
    track_sid: str
    at: float = 0.0
    """When the caller had received all of it (anyio clock)."""
    first_at: float = 0.0
    """When its first text arrived (the agent streams a reply's text as it speaks)."""


@dataclass
class Caller:
    room: rtc.Room
    identity: str
    source: rtc.AudioSource
    captions: list[Caption] = field(default_factory=list)
    agent_audio: list[np.ndarray] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)
    spoke_at: float = 0.0
    """When the caller's last utterance had been sent (anyio clock)."""
    voice_at: float = 0.0
    """When the first audible agent audio after ``spoke_at`` arrived."""
    last_voice_at: float = 0.0
    voiced_at: list[float] = field(default_factory=list)
    """When each audible frame of the agent arrived (turn-taking benchmarks read the gaps)."""
    heard: anyio.Event = field(default_factory=anyio.Event)
    """Set once someone (the agent) subscribed to the caller's microphone."""
    _speech: list[bytes] = field(default_factory=list)
    _speech_done: anyio.Event = field(default_factory=anyio.Event)

    def _notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def say(self, pcm16k_or_48k: bytes, rate: int) -> None:
        """Speak ``pcm`` (int16 mono at ``rate``) in real time; returns when it has been sent."""
        samples = np.frombuffer(pcm16k_or_48k, dtype=np.int16)
        if rate != MIC_RATE:
            import soxr

            samples = soxr.resample(samples, rate, MIC_RATE).astype(np.int16)
        self._speech_done = anyio.Event()
        self._speech.append(samples.tobytes())
        await self._speech_done.wait()
        self.spoke_at = anyio.current_time()

    async def wait_for(self, predicate: object, *, deadline_s: float, what: str) -> None:
        """Wait (event-driven) until ``predicate()`` is true."""
        assert callable(predicate)
        with anyio.move_on_after(deadline_s):
            while not predicate():
                await self.changed.wait()
            return
        raise TimeoutError(f"caller waited {deadline_s}s for {what}; captions: {self.captions}")

    def final_at(self, sender: str, text: str) -> float:
        """When the final caption ``text`` from ``sender`` arrived."""
        return next(
            c.at for c in self.captions if c.sender == sender and c.final and c.text == text
        )

    def started_at(self, sender: str, text: str) -> float:
        """When the first words of the final caption ``text`` from ``sender`` arrived."""
        return next(
            c.first_at for c in self.captions if c.sender == sender and c.final and c.text == text
        )

    def finals(self, sender: str) -> list[str]:
        return [c.text for c in self.captions if c.sender == sender and c.final]

    def agent_pcm(self) -> bytes:
        if not self.agent_audio:
            return b""
        return np.concatenate(self.agent_audio).astype(np.int16).tobytes()

    async def _microphone(self) -> None:
        frame_samples = MIC_RATE * FRAME_MS // 1000
        silence = bytes(frame_samples * 2)
        while True:
            if self._speech:
                pcm = self._speech.pop(0)
                for i in range(0, len(pcm), frame_samples * 2):
                    chunk = pcm[i : i + frame_samples * 2]
                    chunk += bytes(frame_samples * 2 - len(chunk))
                    await self.source.capture_frame(
                        rtc.AudioFrame(chunk, MIC_RATE, 1, frame_samples)
                    )
                self._speech_done.set()
            else:
                await self.source.capture_frame(rtc.AudioFrame(silence, MIC_RATE, 1, frame_samples))

    async def _record(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream.from_track(track=track, sample_rate=AGENT_RATE, num_channels=1)
        try:
            async for event in stream:
                samples = np.frombuffer(event.frame.data, dtype=np.int16).copy()
                self.agent_audio.append(samples)
                if len(samples) and float(np.abs(samples).max()) > _VOICE_PEAK:
                    self.last_voice_at = anyio.current_time()
                    self.voiced_at.append(self.last_voice_at)
                    if not self.voice_at or self.voice_at < self.spoke_at:
                        self.voice_at = self.last_voice_at
                        self._notify()
        finally:
            await stream.aclose()

    async def _read_caption(self, reader: rtc.TextStreamReader, sender: str) -> None:
        text, first_at = "", 0.0
        async for chunk in reader:
            first_at = first_at or anyio.current_time()
            text += chunk
        attrs = reader.info.attributes or {}
        self.captions.append(
            Caption(
                sender,
                text,
                attrs.get("lk.transcription_final") == "true",
                attrs.get("lk.segment_id", ""),
                attrs.get("lk.transcribed_track_id", ""),
                anyio.current_time(),
                first_at,
            )
        )
        self._notify()


@asynccontextmanager
async def caller(
    server: ServerAccess,
    room_name: str,
    identity: str = "caller",
    *,
    agent_identity: str = "voice-agent",
) -> AsyncIterator[Caller]:
    """Join ``room_name`` as a speaking caller; leaves on exit."""
    room = rtc.Room()
    source = rtc.AudioSource(MIC_RATE, 1, queue_size_ms=100)
    bot = Caller(room, identity, source)
    async with anyio.create_task_group() as tg:
        _wire(room, bot, tg, agent_identity)
        await room.connect(server.ws_url, participant_token(server, room_name, identity))
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        await room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        tg.start_soon(bot._microphone)
        # Speaking before the agent listens would lose the first words: wait for it.
        with anyio.fail_after(10):
            await bot.heard.wait()
        for participant in room.remote_participants.values():
            for pub in participant.track_publications.values():
                if participant.identity == agent_identity and pub.track is not None:
                    tg.start_soon(bot._record, pub.track)
        try:
            yield bot
        finally:
            tg.cancel_scope.cancel()
            with anyio.move_on_after(5, shield=True):
                await room.disconnect()
                await source.aclose()


def _wire(room: rtc.Room, bot: Caller, tg: TaskGroup, agent_identity: str) -> None:
    @room.on("track_subscribed")
    def _on_track(
        track: rtc.Track, _pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if participant.identity == agent_identity and track.kind == rtc.TrackKind.KIND_AUDIO:
            tg.start_soon(bot._record, track)

    @room.on("local_track_subscribed")
    def _on_heard(_track: rtc.Track) -> None:
        bot.heard.set()

    @room.on("participant_attributes_changed")
    def _on_attrs(_changed: dict[str, str], _p: rtc.Participant) -> None:
        bot._notify()

    def on_caption(reader: rtc.TextStreamReader, sender: str) -> None:
        tg.start_soon(bot._read_caption, reader, sender)

    room.register_text_stream_handler("lk.transcription", on_caption)
