"""The offline recogniser: a VAD finds the speech, pocketsphinx transcribes it, a rule ends turns.

``send()`` runs the VAD (Silero by default, webrtcvad as a fallback; ``_vad.py``) inline,
frame by frame, so START_OF_SPEECH is never held up by decoding. Speech frames (with a short
pre-roll) go to the stream's decode task, which feeds them to a pooled pocketsphinx decoder as
they arrive.

End of turn: after ``min_endpointing_ms`` of silence the stream asks the decode task whether
the words so far read like a finished turn (``actors.pipeline.likely_complete``); a complete
turn ends there, an unfinished one ("a pizza with …") waits for more speech up to
``max_endpointing_ms``; a speaker who went on talking after a turn was ended gets more time
before the next complete-sounding one ends (``learn_pauses``). Then only ``end_utt()`` is left
(~25 ms), and FINAL (with its ``end_of_turn_ms`` and ``stt_final_ms``) and END_OF_SPEECH
follow. With ``turn_detection = "silence"`` a fixed ``endpointing_ms`` ends every turn instead.

Blocking calls run in worker threads; the decode task belongs to the stream's context manager.
Transcripts are logged only at DEBUG, under ``pii.*`` keys.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial as partial_call
from typing import Literal, TypeVar

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from actors._exceptions import ProviderError
from actors.pipeline import PauseHabit, is_backchannel, likely_complete
from actors.providers._base import STT_SAMPLE_RATE, SpeechEvent, SpeechEventKind, SttStream
from actors.providers._local_stream import Begin, End, Item, LocalStream, Probe, Tuning, Verdict
from actors.providers._settings import SttSettings
from actors.providers._sphinx import DecoderPool, SphinxDecoder
from actors.providers._tasks import task_group
from actors.providers._vad import VadFactory, VadKind

__all__ = ("LocalStt",)

T = TypeVar("T")

logger = logging.getLogger(__name__)

_EVENT_BUFFER = 256  # events are never dropped: a slow consumer makes send() wait


class LocalStt:
    """pocketsphinx + a VAD + an end-of-turn rule, fully offline; implements ``SttProvider``.

    Build one per process and share it: its decoders (~95 MB each) are pooled across streams,
    and the Silero model is loaded once.

    Args:
        language: default language; only English is understood.
        endpointing_ms: with ``turn_detection = "silence"``, the silence that ends a turn.
        min_speech_s: speech shorter than this never starts a turn.
        vad: ``silero`` (neural, default) or ``webrtc``.
        vad_threshold: Silero speech probability that starts speech.
        vad_aggressiveness: webrtcvad mode 0..3.
        turn_detection: ``text`` (a rule on the words so far) or ``silence`` (fixed).
        min_endpointing_ms: silence that ends a turn that reads complete.
        max_endpointing_ms: silence that ends a turn that reads unfinished.
        learn_pauses: give a speaker who went on after a turn was ended more time next turns.
        max_utterance_s: longer utterances are cut and finalised.
        interim_interval_s: audio between INTERIM transcripts (0 = none).
        decoders: most decoders alive at once (concurrent utterances beyond it wait).

    Raises:
        ConfigError: the Silero model cannot be found or loaded.
    """

    name = "local"

    def __init__(
        self,
        *,
        language: str = "en-US",
        endpointing_ms: int = 500,
        min_speech_s: float = 0.2,
        vad: VadKind = "silero",
        vad_threshold: float = 0.5,
        vad_aggressiveness: int = 2,
        turn_detection: Literal["text", "silence"] = "text",
        min_endpointing_ms: int = 200,
        max_endpointing_ms: int = 2000,
        learn_pauses: bool = True,
        max_utterance_s: float = 30.0,
        interim_interval_s: float = 0.3,
        decoders: int = 2,
    ) -> None:
        self._language = language
        detect = turn_detection == "text"
        self._tuning = Tuning(
            min_endpoint_s=(min_endpointing_ms if detect else endpointing_ms) / 1000,
            max_endpoint_s=(max_endpointing_ms if detect else endpointing_ms) / 1000,
            detect_turns=detect,
            min_speech_s=min_speech_s,
            max_utterance_s=max_utterance_s,
            interim_s=interim_interval_s,
        )
        self._learn_pauses = detect and learn_pauses
        self._vads = VadFactory(vad, threshold=vad_threshold, webrtc_mode=vad_aggressiveness)
        frame_s = self._vads.frame_samples / STT_SAMPLE_RATE
        self._audio_buffer = round(max_utterance_s / frame_s) + 8
        self._pool = DecoderPool(decoders, vendor=self.name)

    @classmethod
    def from_settings(cls, settings: SttSettings) -> LocalStt:
        return cls(
            language=settings.language,
            endpointing_ms=settings.endpointing_ms,
            min_speech_s=settings.min_speech_s,
            vad=settings.vad,
            vad_threshold=settings.vad_threshold,
            vad_aggressiveness=settings.vad_aggressiveness,
            turn_detection=settings.turn_detection,
            min_endpointing_ms=settings.min_endpointing_ms,
            max_endpointing_ms=settings.max_endpointing_ms,
            learn_pauses=settings.learn_pauses,
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
        audio_send, audio_receive = anyio.create_memory_object_stream[Item](self._audio_buffer)
        verdict = Verdict()
        vad = self._vads.make()
        tuning = self._tuning
        habit = (
            PauseHabit(tuning.min_endpoint_s, tuning.max_endpoint_s) if self._learn_pauses else None
        )
        stream = LocalStream(
            tuning, vad, verdict, events_send.clone(), events_receive, audio_send, habit
        )
        frame_s = vad.frame_samples / STT_SAMPLE_RATE
        async with task_group() as tg, events_receive:
            tg.start_soon(
                self._decode,
                audio_receive,
                events_send,
                verdict,
                frame_s,
                habit,
                name="stt:local:decode",
            )
            try:
                yield stream
            finally:
                stream.close()
                tg.cancel_scope.cancel()

    async def aclose(self) -> None:
        """Drop the idle decoders."""
        self._pool.clear()

    async def _decode(
        self,
        audio: ObjectReceiveStream[Item],
        events: ObjectSendStream[SpeechEvent],
        verdict: Verdict,
        frame_s: float,
        habit: PauseHabit | None,
    ) -> None:
        decoder: SphinxDecoder | None = None
        resumed_s: float | None = None  # the current turn went on from one ended as complete
        speech_s = 0.0  # audio fed since speech started (the pre-roll not counted)
        last_interim = ""
        interim_s = self._tuning.interim_s
        async with audio, events:
            try:
                async for item in audio:
                    match item:
                        case bytes():
                            if decoder is None:
                                continue
                            before, speech_s = speech_s, speech_s + len(item) / 2 / STT_SAMPLE_RATE
                            due = (
                                interim_s > 0
                                and speech_s >= interim_s
                                and speech_s // interim_s > max(before, 0.0) // interim_s
                            )
                            partial = await self._run(partial_call(decoder.feed, item, partial=due))
                            if partial and partial != last_interim:
                                last_interim = partial
                                await events.send(
                                    SpeechEvent(SpeechEventKind.INTERIM, partial, verdict.voiced_s)
                                )
                        case Begin(preroll_frames=preroll, resumed_s=resumed_s):
                            decoder = await self._pool.acquire()
                            await self._run(decoder.start)
                            speech_s, last_interim = -preroll * frame_s, ""
                        case Probe(id=probe):
                            if decoder is not None:
                                so_far = await self._run(decoder.hypothesis)
                                complete = likely_complete(so_far)
                                verdict.answer(probe, complete)
                                if complete and so_far:
                                    # The FINAL is one end_utt() away: the LLM may start now.
                                    await events.send(
                                        SpeechEvent(SpeechEventKind.PREFLIGHT, so_far)
                                    )
                        case End() if decoder is not None:
                            text = await self._run(decoder.finish)
                            self._pool.release(decoder)
                            decoder = None
                            if text and habit is not None and resumed_s is not None:
                                if not is_backchannel(text):  # "uh-huh" is no pause learnt
                                    habit.spoke_again(resumed_s)
                            if text:
                                logger.debug("local final transcript", extra={"pii.text": text})
                                await events.send(_final(text, item))
                            await events.send(SpeechEvent(SpeechEventKind.END_OF_SPEECH))
                        case _:
                            pass
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


def _final(text: str, end: End) -> SpeechEvent:
    return SpeechEvent(
        SpeechEventKind.FINAL,
        text,
        end.voiced_s,
        end_of_turn_ms=round(end.end_of_turn_s * 1000, 1),
        stt_final_ms=round((time.monotonic() - end.decided_at) * 1000, 1),
    )
