"""Fallback chains: the shared wrappers every stage goes through.

``FallbackStt``, ``FallbackLlm`` and ``FallbackTts`` implement the same Protocols as the providers
they wrap. Each request goes to the providers in order, with a per-request timeout on the first
output (STT: the stream opened; LLM: the first token; TTS: the first audio chunk). A failure or
a timeout *before* any output moves on to the next provider; *after* output started, the error is
raised (the pipeline apologises and goes on). Between two outputs the same timeout guards
against a provider that stalls mid-stream. Every failure counts in
``voice_supervisor_provider_errors_total{vendor,stage}`` and logs one static line; the text of
requests never reaches a log or an exception message.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

import anyio

from actors._exceptions import ProviderError, ProviderTimeoutError
from actors.providers._base import (
    ChatMessage,
    LlmItem,
    LlmProvider,
    SttProvider,
    SttStream,
    ToolCallingLlm,
    ToolDefinition,
    TtsProvider,
)
from actors.providers._health import note_failure, note_ok
from actors.providers._metrics import (
    PROVIDER_ERRORS,
    PROVIDER_FALLBACKS,
    PROVIDER_FIRST_OUTPUT_SECONDS,
)

__all__ = ("FallbackLlm", "FallbackStt", "FallbackTts")

logger = logging.getLogger(__name__)

T = TypeVar("T")
_CLOSE_TIMEOUT_S = 2.0


class _Named(Protocol):
    name: str


def _chain_name(providers: Sequence[_Named]) -> str:
    if not providers:
        raise ValueError("a fallback chain needs at least one provider")
    return "+".join(provider.name for provider in providers)


def _record(stage: str, vendor: str, error: ProviderError, *, next_vendor: str | None) -> None:
    """Count and log one provider failure (static message; details in ``extra``)."""
    PROVIDER_ERRORS.labels(vendor=vendor, stage=stage).inc()
    note_failure(stage, vendor, type(error).__name__)
    extra = {
        "vendor": vendor,
        "stage": stage,
        "error": type(error).__name__,
        "retryable": error.retryable,
        "next_vendor": next_vendor,
    }
    if next_vendor is not None:
        PROVIDER_FALLBACKS.labels(vendor=vendor, stage=stage).inc()
        logger.warning("provider failed before its first output; trying the next", extra=extra)
    else:
        logger.warning("provider failed", extra=extra)


def _timeout(stage: str, vendor: str, timeout_s: float, what: str) -> ProviderTimeoutError:
    return ProviderTimeoutError(
        f"{vendor} gave no {what} within {timeout_s:g} s ({stage}.timeout_s)", vendor=vendor
    )


async def _aclose(items: AsyncGenerator[Any]) -> None:
    with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
        await items.aclose()


async def _stream_chain(
    stage: str,
    what: str,
    attempts: Sequence[tuple[str, Callable[[], AsyncGenerator[T]]]],
    timeout_s: float,
) -> AsyncGenerator[T]:
    """Items from the first attempt that yields one in time; the shared core of LLM and TTS."""
    last_error: ProviderError | None = None
    for index, (vendor, start) in enumerate(attempts):
        next_vendor = attempts[index + 1][0] if index + 1 < len(attempts) else None
        items = start()
        began = anyio.current_time()
        try:
            try:
                with anyio.fail_after(timeout_s):
                    first = await anext(items)
            except TimeoutError as exc:
                raise _timeout(stage, vendor, timeout_s, what) from exc
        except StopAsyncIteration:
            return  # an empty answer is an answer
        except ProviderError as exc:
            _record(stage, vendor, exc, next_vendor=next_vendor)
            last_error = exc
            await _aclose(items)
            continue
        PROVIDER_FIRST_OUTPUT_SECONDS.labels(vendor=vendor, stage=stage).observe(
            anyio.current_time() - began
        )
        note_ok(stage, vendor)
        try:
            yield first
            while True:
                try:
                    with anyio.fail_after(timeout_s):
                        item = await anext(items)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise _timeout(stage, vendor, timeout_s, what) from exc
                yield item
        except ProviderError as exc:
            _record(stage, vendor, exc, next_vendor=None)
            raise
        finally:
            await _aclose(items)
    assert last_error is not None  # the loop ran at least once and every attempt failed
    raise last_error


class FallbackLlm:
    """Language models tried in order; implements ``LlmProvider``.

    Args:
        providers: the chain, primary first.
        timeout_s: time to the first token (and longest gap between tokens).
    """

    def __init__(self, providers: Sequence[LlmProvider], *, timeout_s: float) -> None:
        self.name = _chain_name(providers)
        self.providers = tuple(providers)
        self._timeout_s = timeout_s

    def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        """Stream the reply of the first provider that answers in time.

        Raises:
            ProviderError: every provider failed (the last one's error), or the answering
                provider failed mid-reply.
        """

        def attempt(provider: LlmProvider) -> Callable[[], AsyncGenerator[str]]:
            return lambda: provider.complete(messages, instructions=instructions)

        attempts = [(p.name, attempt(p)) for p in self.providers]
        return _stream_chain("llm", "token", attempts, self._timeout_s)

    def complete_with_tools(
        self,
        messages: Sequence[ChatMessage],
        *,
        instructions: str | None = None,
        tools: Sequence[ToolDefinition] = (),
    ) -> AsyncGenerator[LlmItem]:
        """``complete``, with ``tools`` offered to each provider that can call tools (one
        that cannot answers in text alone); tool calls pass through like text.

        Raises:
            ProviderError: as ``complete``.
        """

        def attempt(provider: LlmProvider) -> Callable[[], AsyncGenerator[LlmItem]]:
            if isinstance(provider, ToolCallingLlm):
                return lambda: provider.complete_with_tools(
                    messages, instructions=instructions, tools=tools
                )
            return lambda: provider.complete(messages, instructions=instructions)

        attempts = [(p.name, attempt(p)) for p in self.providers]
        return _stream_chain("llm", "token", attempts, self._timeout_s)

    async def warm_up(self) -> None:
        await _warm_up(self.providers)

    async def aclose(self) -> None:
        await _close_all(self.providers)


class FallbackTts:
    """Voices tried in order; implements ``TtsProvider``.

    A per-call ``voice`` goes to the primary provider only: voice names mean nothing to another
    vendor, so fallbacks speak with their configured default voice.

    Args:
        providers: the chain, primary first; all must share one ``sample_rate``.
        timeout_s: time to the first audio chunk (and longest gap between chunks).
    """

    def __init__(self, providers: Sequence[TtsProvider], *, timeout_s: float) -> None:
        self.name = _chain_name(providers)
        rates = {provider.sample_rate for provider in providers}
        if len(rates) != 1:
            raise ValueError("every TTS provider of a chain must use the same sample_rate")
        self.sample_rate = rates.pop()
        self.providers = tuple(providers)
        self._timeout_s = timeout_s

    def synthesize(
        self, text: str, *, voice: str | None = None, language: str | None = None
    ) -> AsyncGenerator[bytes]:
        """Stream the audio of the first provider that starts in time.

        Raises:
            ProviderError: every provider failed (the last one's error), or the answering
                provider failed mid-reply.
        """

        def attempt(provider: TtsProvider, index: int) -> Callable[[], AsyncGenerator[bytes]]:
            own_voice = voice if index == 0 else None
            return lambda: provider.synthesize(text, voice=own_voice, language=language)

        attempts = [(p.name, attempt(p, i)) for i, p in enumerate(self.providers)]
        return _stream_chain("tts", "audio", attempts, self._timeout_s)

    async def warm_up(self) -> None:
        await _warm_up(self.providers)

    async def aclose(self) -> None:
        await _close_all(self.providers)


class FallbackStt:
    """Recognisers tried in order when a stream is opened; implements ``SttProvider``.

    Only the opening falls back: once a stream is open, its failure ends it with the
    ``ProviderError`` (the caller opens a new stream, which starts again from the primary).

    Args:
        providers: the chain, primary first.
        timeout_s: how long opening a stream may take.
    """

    def __init__(self, providers: Sequence[SttProvider], *, timeout_s: float) -> None:
        self.name = _chain_name(providers)
        self.providers = tuple(providers)
        self._timeout_s = timeout_s

    @asynccontextmanager
    async def stream(self, *, language: str | None = None) -> AsyncIterator[SttStream]:
        """Open a stream on the first provider that opens in time.

        Raises:
            ProviderError: every provider failed to open (the last one's error), or the open
                stream failed.
        """
        last_error: ProviderError | None = None
        for index, provider in enumerate(self.providers):
            later = self.providers[index + 1 :]
            next_vendor = later[0].name if later else None
            opened = False
            thrown: BaseException | None = None
            began = anyio.current_time()
            try:
                # A deadline scope around the whole stream (not just the open) because the
                # provider's context manager may own a task group, which must nest inside it.
                with anyio.CancelScope(deadline=began + self._timeout_s) as deadline:
                    async with provider.stream(language=language) as stream:
                        opened = True
                        deadline.deadline = math.inf
                        PROVIDER_FIRST_OUTPUT_SECONDS.labels(
                            vendor=provider.name, stage="stt"
                        ).observe(anyio.current_time() - began)
                        note_ok("stt", provider.name)
                        try:
                            yield stream
                        except BaseException as exc:
                            thrown = exc
                            raise
                        return
            except ProviderError as exc:
                if opened:
                    if exc is not thrown:  # not the caller's own error passing through
                        _record("stt", provider.name, exc, next_vendor=None)
                    raise
                error: ProviderError = exc
            else:
                if opened:
                    return  # the provider suppressed the caller's exception: nothing to retry
                # Otherwise only reachable when the deadline cancelled the open.
                error = _timeout("stt", provider.name, self._timeout_s, "open stream")
            _record("stt", provider.name, error, next_vendor=next_vendor)
            last_error = error
        assert last_error is not None  # the loop ran at least once and every attempt failed
        raise last_error

    async def warm_up(self) -> None:
        await _warm_up(self.providers)

    async def aclose(self) -> None:
        await _close_all(self.providers)


async def _warm_up(providers: Sequence[object]) -> None:
    """Let local providers load their models now rather than on the first request."""
    for provider in providers:
        warm_up = getattr(provider, "warm_up", None)
        if warm_up is not None:
            await warm_up()


async def _close_all(providers: Sequence[LlmProvider | TtsProvider | SttProvider]) -> None:
    for provider in providers:
        with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
            await provider.aclose()
