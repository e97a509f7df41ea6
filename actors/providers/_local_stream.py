"""The caller's side of a local recognition stream: VAD, pre-roll and the end-of-turn decision.

``send()`` runs the VAD frame by frame and decides when a turn starts and ends; the audio of a
turn, and the markers around it (begin, probe, end), go to the decode task in ``local_stt.py``
in order. The decode task answers a probe ("is the turn so far complete?") through a
``Verdict``; that is the only state the two share, and both run on the event loop.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum

import anyio
from anyio.abc import ObjectReceiveStream
from anyio.streams.memory import MemoryObjectSendStream

from actors.pipeline import PauseHabit
from actors.providers._base import STT_SAMPLE_RATE, SpeechEvent, SpeechEventKind
from actors.providers._vad import Vad

__all__ = ("Begin", "End", "Item", "LocalStream", "Probe", "Tuning", "Verdict")

_PREROLL_S = 0.3  # audio kept from before the VAD fired, so the first phoneme is not clipped
# How long send() waits for the decoder's verdict on a pause: it is usually ready in a few ms
# (the decoder keeps up with speech); past this the turn goes on and is judged at the next frame.
_VERDICT_WAIT_S = 0.05
# Longest send() waits for a verdict when speech resumes after a probe (see _answered_complete).
_VERDICT_LATE_S = 1.0


@dataclass(frozen=True, slots=True)
class Begin:
    preroll_frames: int
    # The silence since a turn that was ended as complete, when this speech follows one: the
    # decode task learns it as a pause (PauseHabit) unless the turn is only a backchannel.
    resumed_s: float | None = None


@dataclass(frozen=True, slots=True)
class Probe:
    """Silence reached ``min_endpointing_ms``: is the turn so far complete?"""

    id: int


@dataclass(frozen=True, slots=True)
class End:
    decided_at: float  # time.monotonic() when the turn was judged over
    end_of_turn_s: float  # from the last speech frame to that decision
    voiced_s: float  # how much of the turn the VAD called speech


Item = bytes | Begin | Probe | End


class _State(Enum):
    IDLE = "idle"
    PENDING = "pending"  # speech heard, but shorter than min_speech_s so far
    SPEAKING = "speaking"


@dataclass(frozen=True, slots=True)
class Tuning:
    """Durations in seconds; the stream turns them into frames of its VAD's size."""

    min_endpoint_s: float
    max_endpoint_s: float
    detect_turns: bool
    min_speech_s: float
    max_utterance_s: float
    interim_s: float  # 0 = no interims


class Verdict:
    """The decode task's answer to the stream's latest probe, and how much of the current turn
    the VAD called speech (INTERIMs report it: barge-in is judged on voice, not on the silence
    a turn trails)."""

    def __init__(self) -> None:
        self.probe = -1
        self.complete = False
        self.ready = anyio.Event()
        self.voiced_s = 0.0

    def reset(self, probe: int) -> None:
        self.probe, self.complete, self.ready = probe, False, anyio.Event()

    def answer(self, probe: int, complete: bool) -> None:
        if probe == self.probe:
            self.complete = complete
            self.ready.set()


class LocalStream:
    """The caller's side of a local stream: VAD and turn ends in ``send()``, events from the
    decode task."""

    def __init__(
        self,
        tuning: Tuning,
        vad: Vad,
        verdict: Verdict,
        events_send: MemoryObjectSendStream[SpeechEvent],
        events_receive: ObjectReceiveStream[SpeechEvent],
        audio_send: MemoryObjectSendStream[Item],
        habit: PauseHabit | None = None,
    ) -> None:
        self._vad = vad
        self._verdict = verdict
        self._frame_bytes = vad.frame_samples * 2
        frame_s = vad.frame_samples / STT_SAMPLE_RATE
        self._frame_s = frame_s
        self._detect_turns = tuning.detect_turns
        self._min_end = max(1, round(tuning.min_endpoint_s / frame_s))
        self._max_end = max(self._min_end, round(tuning.max_endpoint_s / frame_s))
        self._habit = habit  # None: every complete-sounding turn ends at min_endpointing
        self._ended_complete = False  # the last turn was ended as complete (so may be resumed)
        self._gap_frames = 0  # silence since the last turn's last speech
        self._resume_gap = 0  # that silence when the current (pending) speech began
        # At least min_speech_s: a START_OF_SPEECH never reports less speech than was asked for.
        self._min_speech = max(1, math.ceil(tuning.min_speech_s / frame_s - 1e-9))
        self._max_frames = round(tuning.max_utterance_s / frame_s)
        self._events_send = events_send
        self._events_receive = events_receive
        self._audio_send = audio_send
        self._pending_bytes = bytearray()
        self._preroll: deque[bytes] = deque(maxlen=max(1, round(_PREROLL_S / frame_s)))
        self._held: list[bytes] = []  # frames of a PENDING turn, released once it is confirmed
        self._preroll_frames = 0  # how many of the held frames came from before the VAD fired
        self._state = _State.IDLE
        self._speech_frames = 0
        self._silence_frames = 0
        self._turn_frames = 0
        self._last_speech_at = 0.0
        self._probe = 0
        self._probing = False  # a probe for the current pause was sent
        self._outbox: list[bytearray | Item] = []
        self._ended = False

    async def send(self, pcm: bytes) -> None:
        """Push 16 kHz mono int16 audio; waits if the decoder has fallen far behind."""
        if self._ended:
            raise RuntimeError("SttStream.send() called after end_input()")
        self._pending_bytes += pcm
        usable = len(self._pending_bytes) - len(self._pending_bytes) % self._frame_bytes
        if not usable:
            return
        chunk = bytes(self._pending_bytes[:usable])
        del self._pending_bytes[:usable]
        for offset in range(0, usable, self._frame_bytes):
            frame = chunk[offset : offset + self._frame_bytes]
            await self._on_frame(frame, self._vad.is_speech(frame))
        await self._flush()
        if self._probing and self._state is _State.SPEAKING and not self._verdict.ready.is_set():
            # The verdict usually comes within milliseconds: waiting for it here ends a
            # complete turn now rather than one audio chunk (40 ms) later.
            with anyio.move_on_after(_VERDICT_WAIT_S):
                await self._verdict.ready.wait()
            if self._turn_over():
                self._end_turn()
                await self._flush()

    async def end_input(self) -> None:
        """Finish the current turn (FINAL if any words), then end ``events()``."""
        if self._ended:
            return
        self._ended = True
        if self._state is _State.SPEAKING:
            self._forward(bytes(self._pending_bytes))
            self._end_turn()
            await self._flush()
        self.close()

    def events(self) -> AsyncIterator[SpeechEvent]:
        return self._events_receive

    def close(self) -> None:
        """Stop feeding the decoder (sync, so it also works in a cancelled scope)."""
        self._ended = True
        self._audio_send.close()
        self._events_send.close()

    def _forward(self, item: Item) -> None:
        """Queue an item for the decode task, merging neighbouring audio into one send."""
        if not isinstance(item, bytes):
            self._outbox.append(item)
        elif self._outbox and isinstance(self._outbox[-1], bytearray):
            self._outbox[-1] += item
        elif item:
            self._outbox.append(bytearray(item))

    async def _flush(self) -> None:
        for item in self._outbox:
            await self._audio_send.send(bytes(item) if isinstance(item, bytearray) else item)
        self._outbox.clear()

    def _complete_end(self) -> int:
        """Silence frames that end a turn the decoder judged complete."""
        if self._habit is None:
            return self._min_end
        return min(self._max_end, max(self._min_end, round(self._habit.wait_s / self._frame_s)))

    def _judged_complete(self) -> bool:
        verdict = self._verdict
        return (
            self._probing
            and verdict.probe == self._probe
            and verdict.ready.is_set()
            and verdict.complete
        )

    def _turn_over(self) -> bool:
        if self._silence_frames >= self._max_end or self._turn_frames >= self._max_frames:
            return True
        return self._silence_frames >= self._complete_end() and self._judged_complete()

    def _end_turn(self) -> None:
        now = time.monotonic()
        since = now - self._last_speech_at if self._last_speech_at else 0.0
        self._ended_complete = self._judged_complete() and self._silence_frames < self._max_end
        self._gap_frames = self._silence_frames
        self._state = _State.IDLE
        self._probing = False
        self._forward(End(now, since, self._verdict.voiced_s))

    async def _on_frame(self, frame: bytes, speech: bool) -> None:
        """Advance the VAD state machine by one frame, queueing audio for the decoder."""
        if speech:
            self._last_speech_at = time.monotonic()
        if self._state is _State.IDLE:
            if not speech:
                self._preroll.append(frame)
                self._gap_frames += 1
                return
            self._resume_gap = self._gap_frames
            self._state = _State.PENDING
            self._held = [*self._preroll, frame]
            self._preroll_frames = len(self._preroll)
            self._preroll.clear()
            self._speech_frames, self._silence_frames = 1, 0
        elif self._state is _State.PENDING:
            self._held.append(frame)
            self._speech_frames += speech
            self._silence_frames = 0 if speech else self._silence_frames + 1
            if self._silence_frames >= self._min_end:
                # Too short to be a turn (a cough, a click): forget it.
                self._state = _State.IDLE
                self._gap_frames += len(self._held)
                self._preroll.extend(self._held)
                self._held = []
                return
        else:
            if speech and self._probing and await self._answered_complete():
                # The pause already ended a complete turn; this speech starts the next one.
                self._end_turn()
                await self._on_frame(frame, speech)
                return
            self._on_speaking_frame(frame, speech)
            return
        if self._speech_frames >= self._min_speech:
            self._state = _State.SPEAKING
            resumed_s = self._resume_gap * self._frame_s if self._ended_complete else None
            self._ended_complete = False
            self._verdict.voiced_s = self._speech_frames * self._frame_s
            await self._events_send.send(
                SpeechEvent(
                    SpeechEventKind.START_OF_SPEECH, "", self._speech_frames * self._frame_s
                )
            )
            self._forward(Begin(self._preroll_frames, resumed_s))
            self._forward(b"".join(self._held))
            self._turn_frames, self._held = len(self._held), []

    async def _answered_complete(self) -> bool:
        """Whether the decoder judged the pause complete, waiting (bounded) for its verdict.

        Speech after a pause must not be glued to a turn that was over: in real time the
        verdict came long ago, but a decoder running late (or audio fed faster than real
        time) may still be working on it.
        """
        verdict = self._verdict
        if not verdict.ready.is_set():
            await self._flush()  # the probe may still be in our outbox
            with anyio.move_on_after(_VERDICT_LATE_S):
                await verdict.ready.wait()
        return self._silence_frames >= self._complete_end() and self._judged_complete()

    def _on_speaking_frame(self, frame: bytes, speech: bool) -> None:
        self._turn_frames += 1
        self._forward(frame)
        if speech:
            self._verdict.voiced_s += self._frame_s
            self._silence_frames = 0
            self._probing = False
            return
        self._silence_frames += 1
        if self._detect_turns and self._silence_frames == self._min_end:
            self._probe += 1
            self._probing = True
            self._verdict.reset(self._probe)
            self._forward(Probe(self._probe))
        elif self._turn_over():
            self._end_turn()
