"""Audio in: each subscribed microphone → a bounded ring → that participant's own STT stream.

The ring drops the oldest frames when STT lags (counted in ``AUDIO_FRAMES_DROPPED``); a broken
STT stream is reopened after a second, one refused for good is not. Speech events go to the
pipeline's ``on_speech`` with the speaker and the track. Everything runs in the room actor's
task group.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable

import anyio
from anyio.abc import TaskGroup
from livekit import rtc

from actors._clock import Clock
from actors._exceptions import ProviderError
from actors._metrics import AUDIO_FRAMES_DROPPED, TURN_LATENCY
from actors.pipeline import is_backchannel, meaningful_words
from actors.pipeline._ring import AudioRing
from actors.providers import STT_SAMPLE_RATE, SpeechEvent, SttProvider
from actors.room._settings import CLOSE_BOUND_S, VoiceSettings

__all__ = (
    "Listeners",
    "SpeechHandler",
    "TrackAudio",
    "barges_in",
    "is_listening_noise",
    "stt_latency",
    "track_pcm",
)

logger = logging.getLogger(__name__)

_STT_RETRY_S = 1.0
"""Before a broken recognition stream is reopened (a vendor hiccup costs a second, not a loop)."""

TrackAudio = Callable[[rtc.Track, int, int], AsyncGenerator[bytes]]
"""track_audio(track, sample_rate, frame_ms): a subscribed track's PCM (16-bit mono) frames."""

SpeechHandler = Callable[[str, str, SpeechEvent], None]
"""on_speech(identity, track_sid, event)."""


async def track_pcm(track: rtc.Track, sample_rate: int, frame_ms: int) -> AsyncGenerator[bytes]:
    """A track's audio through the SDK's ``AudioStream``, closed when the caller stops."""
    stream = rtc.AudioStream.from_track(
        track=track, sample_rate=sample_rate, num_channels=1, frame_size_ms=frame_ms
    )
    try:
        async for event in stream:
            yield event.frame.data.tobytes()
    finally:
        with anyio.move_on_after(CLOSE_BOUND_S, shield=True):
            await stream.aclose()


class Listeners:
    """One listening task per subscribed microphone track.

    Args:
        stt: the recogniser.
        settings: the ``[voice]`` settings (frame size, ring capacity).
        language: the room's language now (its metadata may change it).
        on_speech: called with each speech event, in the actor's task group.
        clock: time source (the reopen delay).
        track_audio: reads a subscribed track's frames (tests pass their own).
    """

    def __init__(
        self,
        stt: SttProvider,
        settings: VoiceSettings,
        language: Callable[[], str | None],
        on_speech: SpeechHandler,
        clock: Clock,
        track_audio: TrackAudio = track_pcm,
    ) -> None:
        self._stt = stt
        self._settings = settings
        self._language = language
        self._on_speech = on_speech
        self._clock = clock
        self._track_audio = track_audio
        self._tg: TaskGroup | None = None
        self._scopes: dict[str, anyio.CancelScope] = {}

    def start(self, tg: TaskGroup) -> None:
        self._tg = tg

    def close(self, reason: str) -> None:
        for scope in self._scopes.values():
            scope.cancel(reason)

    def subscribed(self, identity: str, track_sid: str, track: rtc.Track) -> None:
        if self._tg is None or track_sid in self._scopes:
            return
        scope = anyio.CancelScope()
        self._scopes[track_sid] = scope
        self._tg.start_soon(
            self._listen, identity, track_sid, track, scope, name=f"listen:{track_sid}"
        )

    def unsubscribed(self, track_sid: str) -> None:
        scope = self._scopes.pop(track_sid, None)
        if scope is not None:
            scope.cancel("track unsubscribed")

    async def _listen(
        self, identity: str, track_sid: str, track: rtc.Track, scope: anyio.CancelScope
    ) -> None:
        frames = self._track_audio(track, STT_SAMPLE_RATE, self._settings.audio_in_frame_ms)
        ring = AudioRing(self._settings.ring_capacity)
        try:
            with scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_pull, frames, ring, name=f"pull:{track_sid}")
                    await self._recognize(identity, track_sid, ring)
                    tg.cancel_scope.cancel()
        finally:
            self._scopes.pop(track_sid, None)
            await frames.aclose()

    async def _recognize(self, identity: str, track_sid: str, ring: AudioRing) -> None:
        while True:
            try:
                async with self._stt.stream(language=self._language()) as stt:
                    async with anyio.create_task_group() as tg:

                        async def feed() -> None:
                            while (pcm := await ring.pop()) is not None:
                                await stt.send(pcm)
                            await stt.end_input()

                        tg.start_soon(feed, name=f"stt-feed:{track_sid}")
                        async for event in stt.events():
                            self._on_speech(identity, track_sid, event)
                return
            except ProviderError as exc:
                if not exc.retryable:
                    # Every provider refused for good (a bad key, a language the model does
                    # not have): reopening would be refused again, once a second, forever.
                    logger.error(
                        "speech recognition refused; not listening to this track",
                        extra={"vendor": exc.vendor, "error": type(exc).__name__},
                    )
                    return
                # A broken STT stream costs this participant a moment, not the room.
                logger.warning(
                    "speech recognition failed; reopening",
                    extra={"vendor": exc.vendor, "error": type(exc).__name__},
                )
                await self._clock.sleep(_STT_RETRY_S)


async def _pull(frames: AsyncGenerator[bytes], ring: AudioRing) -> None:
    try:
        async for pcm in frames:
            dropped = ring.dropped
            ring.push(pcm)
            if ring.dropped != dropped:
                AUDIO_FRAMES_DROPPED.inc()
    finally:
        ring.close()


def stt_latency(event: SpeechEvent) -> dict[str, float]:
    """The recogniser's stages of a FINAL, observed once here (the reply carries them on)."""
    stages = {"end_of_turn": event.end_of_turn_ms, "stt_final": event.stt_final_ms}
    known = {stage: ms for stage, ms in stages.items() if ms is not None}
    for stage, ms in known.items():
        TURN_LATENCY.labels(stage=stage).observe(ms / 1000)
    return known


def is_listening_noise(event: SpeechEvent, settings: VoiceSettings) -> bool:
    """A FINAL said over the agent that did not interrupt it: a backchannel, or speech too
    short to be one (a recogniser turns "mm-hm" into "and", "uh-huh" into "ahead")."""
    short = 0 < event.speech_duration_s < settings.min_interrupt_s
    return short or is_backchannel(event.text)


def barges_in(event: SpeechEvent, settings: VoiceSettings) -> bool:
    """Speech over the agent long enough, with enough real words, to cut its reply."""
    if event.speech_duration_s < settings.min_interrupt_s:
        return False
    return meaningful_words(event.text) >= settings.min_interrupt_words
