"""The offline recogniser: webrtcvad finds the turns, pocketsphinx transcribes them.

``send()`` runs the VAD inline (microseconds per 20 ms frame), so START_OF_SPEECH is never held
up by decoding. Speech frames (with a short pre-roll) go to the stream's decode task, which
feeds them to a pooled pocketsphinx decoder as they arrive: when ``endpointing_ms`` of silence
ends the turn, only ``end_utt()`` is left (~25 ms), then FINAL and END_OF_SPEECH follow.
Blocking calls run in worker threads; the decode task belongs to the stream's context manager.
Transcripts are logged only at DEBUG, under ``pii.*`` keys.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from functools import partial as partial_call
from typing import TypeVar

import anyio
import webrtcvad
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.streams.memory import MemoryObjectSendStream

from actors._exceptions import ProviderError
from actors.providers._base import STT_SAMPLE_RATE, SpeechEvent, SpeechEventKind, SttStream
from actors.providers._settings import SttSettings
from actors.providers._sphinx import DecoderPool, SphinxDecoder
from actors.providers._tasks import task_group

__all__ = ("LocalStt",)

T = TypeVar("T")

logger = logging.getLogger(__name__)

_FRAME_S = 0.02
_FRAME_BYTES = int(STT_SAMPLE_RATE * _FRAME_S) * 2
_PREROLL_S = 0.3  # audio kept from before the VAD fired, so the first phoneme is not clipped
_EVENT_BUFFER = 256  # events are never dropped: a slow consumer makes send() wait
_BEGIN = "begin"
_END = "end"


class _Vad(Enum):
    IDLE = "idle"
    PENDING = "pending"  # speech heard, but shorter than min_speech_s so far
    SPEAKING = "speaking"


@dataclass(frozen=True, slots=True)
class _Tuning:
    endpoint_frames: int
    min_speech_frames: int
    max_frames: int
    interim_frames: int  # 0 = no interims
    vad_mode: int


class LocalStt:
    """pocketsphinx + webrtcvad, fully offline; implements ``SttProvider``.

    Build one per process and share it: its decoders (~95 MB each) are pooled across streams.

    Args:
        language: default language; only English is understood.
        endpointing_ms: silence that ends a turn.
        min_speech_s: speech shorter than this never starts a turn.
        vad_aggressiveness: webrtcvad mode 0..3.
        max_utterance_s: longer utterances are cut and finalised.
        interim_interval_s: audio between INTERIM transcripts (0 = none).
        decoders: most decoders alive at once (concurrent utterances beyond it wait).
    """

    name = "local"

    def __init__(
        self,
        *,
        language: str = "en-US",
        endpointing_ms: int = 500,
        min_speech_s: float = 0.2,
        vad_aggressiveness: int = 2,
        max_utterance_s: float = 30.0,
        interim_interval_s: float = 0.5,
        decoders: int = 2,
    ) -> None:
        self._language = language
        self._tuning = _Tuning(
            endpoint_frames=max(1, round(endpointing_ms / 1000 / _FRAME_S)),
            min_speech_frames=max(1, round(min_speech_s / _FRAME_S)),
            max_frames=round(max_utterance_s / _FRAME_S),
            interim_frames=round(interim_interval_s / _FRAME_S),
            vad_mode=vad_aggressiveness,
        )
        self._audio_buffer = self._tuning.max_frames + 1
        self._pool = DecoderPool(decoders, vendor=self.name)

    @classmethod
    def from_settings(cls, settings: SttSettings) -> LocalStt:
        return cls(
            language=settings.language,
            endpointing_ms=settings.endpointing_ms,
            min_speech_s=settings.min_speech_s,
            vad_aggressiveness=settings.vad_aggressiveness,
            max_utterance_s=settings.max_utterance_s,
            interim_interval_s=settings.interim_interval_s,
            decoders=settings.local_decoders,
        )

    async def warm_up(self) -> None:
        """Load one decoder now, so the first utterance does not wait for it."""
        self._pool.release(await self._pool.acquire())

    @asynccontextmanager
    async def stream(self, *, language: str | None = None) -> AsyncIterator[SttStream]:
        """Open a recognition stream (instant; decoders load on first speech).

        Raises:
            ProviderError: the language is not English, or pocketsphinx cannot load.
        """
        if not (language or self._language).lower().startswith("en"):
            raise ProviderError(
                "local STT only understands English; set stt.provider for other languages",
                vendor=self.name,
                retryable=False,
            )
        events_send, events_receive = anyio.create_memory_object_stream[SpeechEvent](_EVENT_BUFFER)
        audio_send, audio_receive = anyio.create_memory_object_stream[bytes | str](
            self._audio_buffer
        )
        stream = _LocalStream(self._tuning, events_send.clone(), events_receive, audio_send)
        async with task_group() as tg, events_receive:
            tg.start_soon(self._decode, audio_receive, events_send, name="stt:local:decode")
            try:
                yield stream
            finally:
                stream.close()
                tg.cancel_scope.cancel()

    async def aclose(self) -> None:
        """Drop the idle decoders."""
        self._pool.clear()

    async def _decode(
        self, audio: ObjectReceiveStream[bytes | str], events: ObjectSendStream[SpeechEvent]
    ) -> None:
        decoder: SphinxDecoder | None = None
        fed_frames = 0
        last_interim = ""
        async with audio, events:
            try:
                async for item in audio:
                    if isinstance(item, bytes):
                        if decoder is None:
                            continue
                        before = fed_frames
                        fed_frames += len(item) // _FRAME_BYTES
                        every = self._tuning.interim_frames
                        due = every > 0 and fed_frames // every > before // every
                        partial = await self._run(partial_call(decoder.feed, item, partial=due))
                        if partial and partial != last_interim:
                            last_interim = partial
                            await events.send(
                                SpeechEvent(SpeechEventKind.INTERIM, partial, fed_frames * _FRAME_S)
                            )
                    elif item == _BEGIN:
                        decoder = await self._pool.acquire()
                        await self._run(decoder.start)
                        fed_frames, last_interim = 0, ""
                    elif decoder is not None:  # _END
                        text = await self._run(decoder.finish)
                        self._pool.release(decoder)
                        decoder = None
                        if text:
                            logger.debug("local final transcript", extra={"pii.text": text})
                            await events.send(SpeechEvent(SpeechEventKind.FINAL, text))
                        await events.send(SpeechEvent(SpeechEventKind.END_OF_SPEECH))
            finally:
                if decoder is not None:
                    self._pool.release(decoder)  # reset on its next acquire

    async def _run(self, call: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(call)
        except Exception as exc:
            raise ProviderError(
                "local STT: pocketsphinx failed while decoding",
                vendor=self.name,
                retryable=False,
            ) from exc


class _LocalStream:
    """The caller's side of a local stream: VAD in ``send()``, events from the decode task."""

    def __init__(
        self,
        tuning: _Tuning,
        events_send: MemoryObjectSendStream[SpeechEvent],
        events_receive: ObjectReceiveStream[SpeechEvent],
        audio_send: MemoryObjectSendStream[bytes | str],
    ) -> None:
        self._tuning = tuning
        self._vad = webrtcvad.Vad(tuning.vad_mode)
        self._events_send = events_send
        self._events_receive = events_receive
        self._audio_send = audio_send
        self._pending_bytes = bytearray()
        self._preroll: deque[bytes] = deque(maxlen=max(1, round(_PREROLL_S / _FRAME_S)))
        self._held: list[bytes] = []  # frames of a PENDING turn, released once it is confirmed
        self._state = _Vad.IDLE
        self._speech_frames = 0
        self._silence_frames = 0
        self._turn_frames = 0
        self._outbox: list[bytearray | str] = []
        self._ended = False

    async def send(self, pcm: bytes) -> None:
        """Push 16 kHz mono int16 audio; waits if the decoder has fallen far behind."""
        if self._ended:
            raise RuntimeError("SttStream.send() called after end_input()")
        self._pending_bytes += pcm
        usable = len(self._pending_bytes) - len(self._pending_bytes) % _FRAME_BYTES
        if not usable:
            return
        chunk = bytes(self._pending_bytes[:usable])
        del self._pending_bytes[:usable]
        for offset in range(0, usable, _FRAME_BYTES):
            frame = chunk[offset : offset + _FRAME_BYTES]
            await self._on_frame(frame, self._vad.is_speech(frame, STT_SAMPLE_RATE))
        await self._flush()

    async def end_input(self) -> None:
        """Finish the current turn (FINAL if any words), then end ``events()``."""
        if self._ended:
            return
        self._ended = True
        if self._state is _Vad.SPEAKING:
            self._forward(bytes(self._pending_bytes))
            self._forward(_END)
            await self._flush()
        self.close()

    def events(self) -> AsyncIterator[SpeechEvent]:
        return self._events_receive

    def close(self) -> None:
        """Stop feeding the decoder (sync, so it also works in a cancelled scope)."""
        self._ended = True
        self._audio_send.close()
        self._events_send.close()

    def _forward(self, item: bytes | str) -> None:
        """Queue an item for the decode task, merging neighbouring audio into one send."""
        if isinstance(item, str):
            self._outbox.append(item)
        elif self._outbox and isinstance(self._outbox[-1], bytearray):
            self._outbox[-1] += item
        elif item:
            self._outbox.append(bytearray(item))

    async def _flush(self) -> None:
        for item in self._outbox:
            await self._audio_send.send(item if isinstance(item, str) else bytes(item))
        self._outbox.clear()

    async def _on_frame(self, frame: bytes, speech: bool) -> None:
        """Advance the VAD state machine by one frame, queueing audio for the decoder."""
        tuning = self._tuning
        if self._state is _Vad.IDLE:
            if not speech:
                self._preroll.append(frame)
                return
            self._state = _Vad.PENDING
            self._held = [*self._preroll, frame]
            self._preroll.clear()
            self._speech_frames, self._silence_frames = 1, 0
        elif self._state is _Vad.PENDING:
            self._held.append(frame)
            self._speech_frames += speech
            self._silence_frames = 0 if speech else self._silence_frames + 1
            if self._silence_frames >= tuning.endpoint_frames:
                # Too short to be a turn (a cough, a click): forget it.
                self._state = _Vad.IDLE
                self._preroll.extend(self._held)
                self._held = []
                return
        else:
            self._turn_frames += 1
            self._silence_frames = 0 if speech else self._silence_frames + 1
            self._forward(frame)
            if self._silence_frames >= tuning.endpoint_frames or (
                self._turn_frames >= tuning.max_frames
            ):
                self._state = _Vad.IDLE
                self._forward(_END)
            return
        if self._speech_frames >= tuning.min_speech_frames:
            self._state = _Vad.SPEAKING
            await self._events_send.send(
                SpeechEvent(SpeechEventKind.START_OF_SPEECH, "", self._speech_frames * _FRAME_S)
            )
            self._forward(_BEGIN)
            self._forward(b"".join(self._held))
            self._turn_frames, self._held = len(self._held), []
