"""Streaming chat completions from any OpenAI-compatible API, through the openai SDK.

(Named ``openai_llm`` so that ``import openai`` inside the package always means the SDK.)
The SDK's own retries are off (``max_retries=0``): a retry would hide a slow first token from
the fallback chain, which is where retries and timeouts belong. The one exception is a 429 or
503 with a short ``Retry-After``: the server said when to come back, so the request waits that
long once (bounded by ``retry_after_max_s``). ``_vendor_errors`` is the one place where SDK and
HTTP exceptions become ``ProviderError``s. Prompts and replies are logged only at DEBUG, under
``pii.*`` keys.

What compatible servers really do, and what this module does about it: reasoning models stream
``delta.reasoning_content`` (DeepSeek, vLLM) or ``delta.reasoning`` (OpenRouter, Ollama, Groq)
before any content; it is never spoken, but each such delta is yielded as ``""`` so that the
fallback chain's first-token and gap timeouts see a live model. A reply that ends with
``finish_reason`` ``length`` or ``content_filter`` ends there (what was said is kept) and the
reason is logged. A 429 ``insufficient_quota`` is final. Keyless local servers get no
``Authorization`` header at all.

Tool calls stream as ``delta.tool_calls`` fragments keyed by ``index``: the first fragment of a
call has its ``id`` and ``function.name``, later ones only more ``function.arguments`` text
(split anywhere, even inside a string). They are joined per index and yielded as ``ToolCall``s
once the stream ends, in index order; each fragment yields ``""`` meanwhile (alive).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

import anyio
import httpx2
import openai
from openai import AsyncOpenAI, AsyncStream, Omit, omit
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDelta, ChoiceDeltaToolCall
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from actors._exceptions import (
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    ProviderTimeoutError,
)
from actors.providers._base import ChatMessage, LlmItem, ToolCall, ToolDefinition
from actors.providers._openai_payload import chat_payload, is_strict, tools_payload
from actors.providers._settings import LlmCompat, LlmSettings

__all__ = ("OpenAiLlm",)

logger = logging.getLogger(__name__)

VENDOR = "openai"
_CLOSE_TIMEOUT_S = 2.0
_KEYLESS = "keyless"  # the SDK insists on a key; the header that would carry it is omitted
_QUOTA = "insufficient_quota"
_CUT = frozenset({"length", "content_filter"})
_REASONING_FIELDS = ("reasoning_content", "reasoning")
_COMPAT_HINT = (
    "; if the server refuses messages[].name or roles that do not alternate, set [llm] compat "
    '= "strict"'
)


def _status_hint(exc: openai.APIStatusError, strict_may_help: bool) -> tuple[str, bool | None]:
    """What to tell the operator about this status, and whether it is retryable (None: the
    status decides). ``strict_may_help``: the request had what strict servers refuse."""
    status = exc.status_code
    if _QUOTA in (exc.code, exc.type):
        return ": the account's quota is used up (billing, or [llm] api_key)", False
    if status in (401, 403):
        return ": check OPENAI_API_KEY ([llm] api_key)", None
    if status == 404:
        return ": check [llm] model and [llm] base_url", None
    if strict_may_help and status in (400, 422, 500):  # llama.cpp answers its template's 500
        return _COMPAT_HINT, None
    return "", None


@contextmanager
def _vendor_errors(action: str, strict_may_help: bool = False) -> Iterator[None]:
    """Translate openai-SDK and HTTP failures while trying to ``action``."""
    try:
        yield
    except (openai.APITimeoutError, httpx2.TimeoutException) as exc:
        raise ProviderTimeoutError(f"openai timed out trying to {action}", vendor=VENDOR) from exc
    except openai.APIStatusError as exc:
        hint, retryable = _status_hint(exc, strict_may_help)
        raise ProviderStatusError(
            f"openai refused to {action} (HTTP {exc.status_code}){hint}",
            vendor=VENDOR,
            status=exc.status_code,
            retryable=retryable,
        ) from exc
    except (openai.APIConnectionError, httpx2.TransportError) as exc:
        raise ProviderConnectionError(
            f"openai connection failed trying to {action}", vendor=VENDOR
        ) from exc
    except openai.OpenAIError as exc:
        # An error event inside the stream, or a malformed response.
        raise ProviderError(
            f"openai failed trying to {action}", vendor=VENDOR, retryable=True
        ) from exc


def _retry_after_s(error: BaseException) -> float | None:
    """The wait a 429/503 asked for (``retry-after-ms``, else ``retry-after`` in seconds)."""
    cause = error.__cause__
    if not isinstance(cause, openai.APIStatusError):
        return None
    headers = cause.response.headers
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            return None  # an HTTP date: not worth parsing for a wait we bound anyway
    return None


def _join_fragments(calls: dict[int, list[str]], fragments: list[ChoiceDeltaToolCall]) -> None:
    """Add streamed tool-call fragments to the calls being written, by their index."""
    for fragment in fragments:
        call = calls.setdefault(fragment.index, ["", "", ""])
        if fragment.id:
            call[0] = fragment.id
        function = fragment.function
        if function is not None:
            if function.name:
                call[1] += function.name  # sent whole by OpenAI; some servers split it too
            if function.arguments:
                call[2] += function.arguments


def _is_reasoning(delta: ChoiceDelta) -> bool:
    extra = delta.model_extra or {}
    return any(extra.get(name) for name in _REASONING_FIELDS)


class OpenAiLlm:
    """An OpenAI-compatible chat model, streamed; implements ``LlmProvider``.

    Args:
        api_key: the API key; None for a server that asks for none (no header is sent).
        model: the model name.
        base_url: the API's base URL (``.../v1``); None = OpenAI's.
        instructions: the default system prompt (``complete(instructions=...)`` overrides it).
        timeout_s: HTTP timeout (connect, and each read: also the longest gap between tokens).
        compat: the history's dialect (``[llm] compat``).
        retry_after_max_s: the longest Retry-After waited for (also at most ``timeout_s / 2``).
        sleep: how to wait for a Retry-After (tests pass their own).
    """

    name = VENDOR

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str,
        base_url: str | None = None,
        instructions: str = "",
        timeout_s: float = 10.0,
        compat: LlmCompat = "openai",
        retry_after_max_s: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._client = AsyncOpenAI(
            api_key=api_key or _KEYLESS,
            base_url=base_url,
            max_retries=0,
            timeout=timeout_s,
        )
        # Omitted per request: the SDK checks the request's own headers for the omission.
        self._headers: dict[str, str | Omit] = {"Authorization": omit} if api_key is None else {}
        self._model = model
        self._instructions = instructions
        self._compat: LlmCompat = compat
        self._retry_after_max_s = min(retry_after_max_s, timeout_s / 2)
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: LlmSettings, *, api_key: str | None) -> OpenAiLlm:
        return cls(
            api_key=api_key,
            model=settings.model,
            base_url=settings.base_url,
            instructions=settings.instructions,
            timeout_s=settings.timeout_s,
            compat=settings.compat,
            retry_after_max_s=settings.retry_after_max_s,
        )

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        """Stream the reply's text deltas (``""`` while a reasoning model thinks).

        Raises:
            ProviderStatusError: the API answered with an error status (401, 400 and an
                exhausted quota are not retryable).
            ProviderTimeoutError: connecting or reading took longer than ``timeout_s``.
            ProviderConnectionError: the API is unreachable or dropped the stream.
        """
        items = self.complete_with_tools(messages, instructions=instructions)
        try:
            async for item in items:
                if isinstance(item, str):  # no tools offered: nothing else comes
                    yield item
        finally:
            await items.aclose()

    async def complete_with_tools(
        self,
        messages: Sequence[ChatMessage],
        *,
        instructions: str | None = None,
        tools: Sequence[ToolDefinition] = (),
    ) -> AsyncGenerator[LlmItem]:
        """Stream the reply's text deltas, then the tool calls it asked for (``tools``).

        Raises:
            ProviderStatusError, ProviderTimeoutError, ProviderConnectionError: as ``complete``.
        """
        prompt = self._instructions if instructions is None else instructions
        payload = chat_payload(messages, prompt, self._compat)
        logger.debug("openai request", extra={"pii.messages": payload})
        stream = await self._start(payload, tools_payload(tools) if tools else None)
        finish: str | None = None
        calls: dict[int, list[str]] = {}  # index -> [id, name, arguments so far]
        try:
            while True:
                chunk: ChatCompletionChunk
                with _vendor_errors("read the completion"):
                    try:
                        chunk = await anext(stream)
                    except StopAsyncIteration:
                        break
                if not chunk.choices:
                    continue  # the usage chunk
                choice = chunk.choices[0]
                finish = choice.finish_reason or finish
                if choice.delta.tool_calls:
                    _join_fragments(calls, choice.delta.tool_calls)
                    yield ""  # a call is being written: alive, nothing to say
                if content := choice.delta.content:
                    yield content
                elif _is_reasoning(choice.delta):
                    yield ""  # thinking: alive, nothing to say yet
        finally:
            # Closing releases the HTTP connection; shielded so a cancelled reply still does it.
            with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
                try:
                    await stream.close()
                except Exception:
                    logger.debug("openai stream close failed", exc_info=True)
        if finish in _CUT:
            # Not an error: what was said stands, and the reply ends there.
            logger.warning("openai reply cut short by the model", extra={"finish_reason": finish})
            return
        for index in sorted(calls):
            call_id, name, arguments = calls[index]
            if name:
                yield ToolCall(call_id or f"call_{index}", name, arguments)

    async def _start(
        self,
        payload: list[ChatCompletionMessageParam],
        tools: list[ChatCompletionToolParam] | None = None,
    ) -> AsyncStream[ChatCompletionChunk]:
        """Start the completion, waiting once for a short Retry-After."""
        # A refusal of what strict servers refuse points at [llm] compat.
        strict_may_help = self._compat == "openai" and not is_strict(payload)
        retrying = AsyncRetrying(
            retry=retry_if_exception(self._worth_waiting),
            stop=stop_after_attempt(2),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt, _vendor_errors("start a completion", strict_may_help):
                return await self._client.chat.completions.create(
                    model=self._model,
                    messages=payload,
                    stream=True,
                    tools=omit if tools is None else tools,
                    extra_headers=self._headers,
                )
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _worth_waiting(self, error: BaseException) -> bool:
        if not isinstance(error, ProviderStatusError) or not error.retryable:
            return False
        wait = _retry_after_s(error) if error.status in (429, 503) else None
        return wait is not None and wait <= self._retry_after_max_s

    @staticmethod
    def _wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return (_retry_after_s(error) or 0.0) if error is not None else 0.0

    @staticmethod
    def _before_sleep(state: RetryCallState) -> None:
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        logger.info("openai asked to retry after a pause; waiting", extra={"wait_s": wait})

    async def aclose(self) -> None:
        """Close the HTTP client."""
        with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
            await self._client.close()
