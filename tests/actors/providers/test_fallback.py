"""Fallback chains with scripted stand-in providers: order, timeouts, errors and metrics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY

from actors import ProviderConnectionError, ProviderError, ProviderStatusError, ProviderTimeoutError
from actors.providers import (
    ChatMessage,
    FallbackLlm,
    FallbackStt,
    FallbackTts,
    SpeechEvent,
    SpeechEventKind,
    SttStream,
)
from actors.providers._tasks import task_group

MESSAGES = (ChatMessage("user", "hi"),)


def errors(vendor: str, stage: str) -> float:
    value = REGISTRY.get_sample_value(
        "voice_supervisor_provider_errors_total", {"vendor": vendor, "stage": stage}
    )
    return value or 0.0


def fallbacks(vendor: str, stage: str) -> float:
    value = REGISTRY.get_sample_value(
        "voice_supervisor_provider_fallbacks_total", {"vendor": vendor, "stage": stage}
    )
    return value or 0.0


def unique(name: str) -> str:
    # Counters are process-wide: a fresh vendor label per test keeps the tests independent.
    return f"{name}-{uuid.uuid4().hex[:8]}"


class StubLlm:
    """Yields ``tokens``; raises ``error`` or stalls forever at index ``at``."""

    def __init__(
        self,
        name: str,
        tokens: Sequence[str] = ("Hello ", "there."),
        *,
        error: ProviderError | None = None,
        stall: bool = False,
        at: int = 0,
    ) -> None:
        self.name = name
        self.tokens = tokens
        self.error = error
        self.stall = stall
        self.at = at
        self.calls = 0

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        self.calls += 1
        for index, token in enumerate(self.tokens):
            if index == self.at and self.error is not None:
                raise self.error
            if index == self.at and self.stall:
                await anyio.sleep_forever()
            yield token

    async def aclose(self) -> None:
        pass


class StubTts(StubLlm):
    sample_rate = 16_000

    def __init__(self, name: str, **kwargs: Any) -> None:  # Any: StubLlm's own keywords
        super().__init__(name, **kwargs)
        self.voices: list[str | None] = []

    async def synthesize(
        self, text: str, *, voice: str | None = None, language: str | None = None
    ) -> AsyncGenerator[bytes]:
        self.voices.append(voice)
        async for token in self.complete(()):
            yield token.encode()


async def collect(items: AsyncIterator[str]) -> str:
    with anyio.fail_after(5):
        return "".join([item async for item in items])


def down(vendor: str) -> ProviderConnectionError:
    return ProviderConnectionError("stub down", vendor=vendor)


async def test_the_primary_answers_when_it_works() -> None:
    first, second = StubLlm(unique("a"), ["one"]), StubLlm(unique("b"), ["two"])
    chain = FallbackLlm([first, second], timeout_s=1.0)
    assert await collect(chain.complete(MESSAGES)) == "one"
    assert second.calls == 0
    assert chain.name == f"{first.name}+{second.name}"


async def test_a_failing_primary_hands_over_and_is_counted() -> None:
    first = StubLlm(unique("a"), error=down("a"))
    second = StubLlm(unique("b"), ["from ", "second"])
    chain = FallbackLlm([first, second], timeout_s=1.0)
    assert await collect(chain.complete(MESSAGES)) == "from second"
    assert errors(first.name, "llm") == 1 and fallbacks(first.name, "llm") == 1
    assert errors(second.name, "llm") == 0


async def test_a_stalled_primary_times_out_and_the_second_answers_in_time() -> None:
    first = StubLlm(unique("a"), stall=True)
    second = StubLlm(unique("b"), ["quick"])
    chain = FallbackLlm([first, second], timeout_s=0.2)
    started = anyio.current_time()
    assert await collect(chain.complete(MESSAGES)) == "quick"
    assert anyio.current_time() - started < 1.0
    assert errors(first.name, "llm") == 1


async def test_all_failing_raises_the_last_error_and_counts_each() -> None:
    first = StubLlm(unique("a"), stall=True)
    second = StubLlm(unique("b"), error=ProviderStatusError("no", vendor="b", status=503))
    chain = FallbackLlm([first, second], timeout_s=0.1)
    with pytest.raises(ProviderStatusError):
        await collect(chain.complete(MESSAGES))
    assert errors(first.name, "llm") == 1 and errors(second.name, "llm") == 1
    assert fallbacks(second.name, "llm") == 0  # nothing left to hand over to


async def test_a_timeout_names_the_setting() -> None:
    chain = FallbackLlm([StubLlm(unique("a"), stall=True)], timeout_s=0.1)
    with pytest.raises(ProviderTimeoutError, match=r"llm\.timeout_s"):
        await collect(chain.complete(MESSAGES))


async def test_after_the_first_token_an_error_is_raised_not_retried() -> None:
    first = StubLlm(unique("a"), ["one ", "two"], error=down("a"), at=1)
    second = StubLlm(unique("b"))
    received: list[str] = []
    with pytest.raises(ProviderConnectionError):
        async for token in FallbackLlm([first, second], timeout_s=1.0).complete(MESSAGES):
            received.append(token)
    assert received == ["one "] and second.calls == 0
    assert errors(first.name, "llm") == 1 and fallbacks(first.name, "llm") == 0


async def test_a_stall_mid_reply_times_out() -> None:
    first = StubLlm(unique("a"), ["one ", "two"], stall=True, at=1)
    with pytest.raises(ProviderTimeoutError):
        await collect(FallbackLlm([first], timeout_s=0.1).complete(MESSAGES))


async def test_an_empty_reply_is_not_a_failure() -> None:
    first, second = StubLlm(unique("a"), []), StubLlm(unique("b"))
    assert await collect(FallbackLlm([first, second], timeout_s=1.0).complete(MESSAGES)) == ""
    assert second.calls == 0


async def test_tts_voice_goes_to_the_primary_only() -> None:
    first = StubTts(unique("a"), error=down("a"))
    second = StubTts(unique("b"), tokens=["pcm"])
    chain = FallbackTts([first, second], timeout_s=1.0)
    audio = [chunk async for chunk in chain.synthesize("Hi.", voice="room-voice")]
    assert audio == [b"pcm"]
    assert first.voices == ["room-voice"] and second.voices == [None]
    assert errors(first.name, "tts") == 1 and chain.sample_rate == 16_000


def test_tts_chain_needs_one_sample_rate() -> None:
    other = StubTts(unique("b"))
    other.sample_rate = 24_000
    with pytest.raises(ValueError, match="sample_rate"):
        FallbackTts([StubTts(unique("a")), other], timeout_s=1.0)


class StubStream:
    def __init__(self) -> None:
        self.sent = anyio.Event()

    async def send(self, pcm: bytes) -> None:
        self.sent.set()

    async def end_input(self) -> None:
        pass

    async def events(self) -> AsyncIterator[SpeechEvent]:
        yield SpeechEvent(SpeechEventKind.FINAL, "hi")


class StubStt:
    """Opens (or fails, or stalls); its stream owns a task, like the real ones."""

    def __init__(
        self,
        name: str,
        *,
        open_error: ProviderError | None = None,
        stall: bool = False,
        later_error: ProviderError | None = None,
    ) -> None:
        self.name = name
        self.open_error = open_error
        self.stall = stall
        self.later_error = later_error
        self.opened = 0

    @asynccontextmanager
    async def stream(self, *, language: str | None = None) -> AsyncIterator[SttStream]:
        if self.stall:
            await anyio.sleep_forever()
        if self.open_error is not None:
            raise self.open_error
        stream = StubStream()

        async def fail_after_audio() -> None:
            await stream.sent.wait()
            if self.later_error is not None:
                raise self.later_error

        async with task_group() as tg:
            self.opened += 1
            tg.start_soon(fail_after_audio)
            yield stream
            tg.cancel_scope.cancel()

    async def aclose(self) -> None:
        pass


async def test_stt_opens_the_first_provider_that_answers() -> None:
    first = StubStt(unique("a"), open_error=down("a"))
    second = StubStt(unique("b"), stall=True)
    third = StubStt(unique("c"))
    chain = FallbackStt([first, second, third], timeout_s=0.2)
    with anyio.fail_after(5):
        async with chain.stream() as stream:
            assert [e.text async for e in stream.events()] == ["hi"]
    assert third.opened == 1
    assert errors(first.name, "stt") == 1 and errors(second.name, "stt") == 1


async def test_stt_all_failing_raises() -> None:
    first = StubStt(unique("a"), open_error=down("a"))
    second = StubStt(unique("b"), stall=True)
    with pytest.raises(ProviderTimeoutError, match="stt.timeout_s"):
        async with FallbackStt([first, second], timeout_s=0.1).stream():
            pass


async def test_stt_failure_after_open_ends_the_stream_and_is_counted() -> None:
    first = StubStt(unique("a"), later_error=down("a"))
    second = StubStt(unique("b"))
    with pytest.raises(ProviderConnectionError), anyio.fail_after(5):
        async with FallbackStt([first, second], timeout_s=1.0).stream() as stream:
            await stream.send(b"\0\0")
            await anyio.sleep_forever()  # ended by the provider's failure
    assert second.opened == 0
    assert errors(first.name, "stt") == 1


async def test_stt_callers_own_errors_are_not_counted() -> None:
    first = StubStt(unique("a"))
    with pytest.raises(ProviderStatusError):
        async with FallbackStt([first], timeout_s=1.0).stream():
            raise ProviderStatusError("from the llm", vendor="other", status=500)
    assert errors(first.name, "stt") == 0


async def test_stt_stream_stays_open_past_the_open_timeout() -> None:
    chain = FallbackStt([StubStt(unique("a"))], timeout_s=0.05)
    async with chain.stream() as stream:
        with anyio.move_on_after(0.2):
            await anyio.sleep_forever()  # the open deadline must not cancel a live stream
        await stream.send(b"\0\0")
