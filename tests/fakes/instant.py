"""Zero-latency providers implementing the real Protocols, for tests and the latency benchmark.

- ``InstantStt``: an energy VAD; START_OF_SPEECH once speech has lasted ``start_ms``, INTERIM
  every ``interim_ms`` of speech, FINAL (the next scripted text) after ``silence_ms`` of silence;
  with a text in ``preflights``, a PREFLIGHT of it at ``silence_ms`` and the FINAL
  ``PREFLIGHT_LEAD_MS`` later (a recogniser whose likely-final words may still change).
- ``EchoLlm``: answers "You said: <last user text>." token by token, at once.
- ``ToneTts``: a 440 Hz tone, ``ms_per_word`` per word, yielded in 20 ms chunks, at once.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import numpy as np

from actors.providers import ChatMessage, SpeechEvent, SpeechEventKind, SttStream

RATE = 16_000
PREFLIGHT_LEAD_MS = 200  # from a PREFLIGHT to its FINAL: the LLM starts on it meanwhile


class Script(Protocol):
    """What a stream reads of its script: whether a line is left, the next one, and taking it."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> str: ...

    def popleft(self) -> str: ...


@dataclass
class _InstantStream:
    script: Script
    preflights: deque[str]
    threshold: float
    start_ms: int
    interim_ms: int
    silence_ms: int
    _send: anyio.abc.ObjectSendStream[SpeechEvent] = field(init=False)
    _receive: anyio.abc.ObjectReceiveStream[SpeechEvent] = field(init=False)
    _speech_ms: float = 0.0
    _silence_ms: float = 0.0
    _started: bool = False
    _next_interim: float = 0.0
    _preflight_at: float | None = None  # silence (ms) when this turn's PREFLIGHT went out

    def __post_init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[SpeechEvent](1024)

    async def send(self, pcm: bytes) -> None:
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
        ms = 1000 * len(samples) / RATE
        # RMS above the threshold, as one dot product (this runs for every frame of every room).
        loud = float(np.dot(samples, samples)) > self.threshold**2 * len(samples) > 0
        if loud:
            self._speech_ms += ms
            self._silence_ms = 0.0
            if not self._started and self._speech_ms >= self.start_ms:
                self._started = True
                self._next_interim = self._speech_ms + self.interim_ms
                await self._send.send(
                    SpeechEvent(
                        SpeechEventKind.START_OF_SPEECH, speech_duration_s=self._speech_ms / 1000
                    )
                )
            elif self._started and self._speech_ms >= self._next_interim:
                self._next_interim += self.interim_ms
                await self._send.send(
                    SpeechEvent(SpeechEventKind.INTERIM, self._peek(), self._speech_ms / 1000)
                )
            return
        if not self._speech_ms:
            return
        self._silence_ms += ms
        if self._silence_ms < self.silence_ms:
            return
        if self._started and self.preflights and self._preflight_at is None:
            self._preflight_at = self._silence_ms
            await self._send.send(SpeechEvent(SpeechEventKind.PREFLIGHT, self.preflights.popleft()))
        if self._preflight_at is None or self._silence_ms >= self._preflight_at + PREFLIGHT_LEAD_MS:
            await self._final()

    async def _final(self) -> None:
        if self._started:
            text = self.script.popleft() if self.script else "hello"
            await self._send.send(SpeechEvent(SpeechEventKind.FINAL, text, self._speech_ms / 1000))
            await self._send.send(SpeechEvent(SpeechEventKind.END_OF_SPEECH))
        self._speech_ms = self._silence_ms = 0.0
        self._started = False
        self._preflight_at = None

    def _peek(self) -> str:
        return self.script[0] if self.script else "hello"

    async def end_input(self) -> None:
        if self._speech_ms:
            await self._final()
        await self._send.aclose()

    async def events(self) -> AsyncIterator[SpeechEvent]:
        async with self._receive:
            async for event in self._receive:
                yield event


class InstantStt:
    name = "instant"

    def __init__(
        self,
        script: Sequence[str] = (),
        *,
        threshold: float = 300.0,
        start_ms: int = 60,
        interim_ms: int = 200,
        silence_ms: int = 240,
    ) -> None:
        self.script: deque[str] = deque(script)
        self.preflights: deque[str] = deque()
        """Likely-final texts announced (PREFLIGHT) before the next FINALs, one per turn."""
        self._args = (threshold, start_ms, interim_ms, silence_ms)
        self.streams = 0

    @asynccontextmanager
    async def stream(self, *, language: str | None = None) -> AsyncIterator[SttStream]:
        self.streams += 1
        stream = _InstantStream(self.script, self.preflights, *self._args)
        try:
            yield stream
        finally:
            await stream._send.aclose()

    async def aclose(self) -> None:
        pass


class EchoLlm:
    name = "echo"

    def __init__(self) -> None:
        self.calls: list[list[ChatMessage]] = []
        self.crash_next = False
        """Raise a bug (not a provider error) on the next call: the room actor crashes."""

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        self.calls.append(list(messages))
        if self.crash_next:
            self.crash_next = False
            raise RuntimeError("a bug in the middle of an answer")
        last = next((m.content for m in reversed(messages) if m.role == "user"), "")
        for i, word in enumerate(f"You said: {last.rstrip('.')}.".split(" ")):
            yield word if i == 0 else " " + word

    async def aclose(self) -> None:
        pass


class ToneTts:
    name = "tone"
    sample_rate = 24_000

    def __init__(self, ms_per_word: int = 200) -> None:
        self.ms_per_word = ms_per_word
        self.texts: list[str] = []

    async def synthesize(
        self, text: str, *, voice: str | None = None, language: str | None = None
    ) -> AsyncGenerator[bytes]:
        self.texts.append(text)
        total = self.sample_rate * self.ms_per_word * max(1, len(text.split())) // 1000
        t = np.arange(total) / self.sample_rate
        pcm = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16).tobytes()
        step = self.sample_rate * 2 * 20 // 1000
        for i in range(0, len(pcm), step):
            yield pcm[i : i + step]

    async def aclose(self) -> None:
        pass


def providers(config: object) -> object:
    """``[voice] providers_factory = "tests.fakes.instant:providers"``: zero-latency fakes.

    Used where providers cannot be handed over in-process (room workers, benchmarks).
    """
    from actors.room import Providers

    return Providers(InstantStt(silence_ms=200), EchoLlm(), ToneTts(ms_per_word=30))
