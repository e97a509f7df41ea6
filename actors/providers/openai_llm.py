"""Streaming chat completions from any OpenAI-compatible API, through the openai SDK.

(Named ``openai_llm`` so that ``import openai`` inside the package always means the SDK.)
The SDK's own retries are off (``max_retries=0``): a retry would hide a slow first token from
the fallback chain, which is where retries and timeouts belong. ``_vendor_errors`` is the one
place where SDK and HTTP exceptions become ``ProviderError``s. Prompts and replies are logged
only at DEBUG, under ``pii.*`` keys.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import contextmanager

import anyio
import httpx2
import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from actors._exceptions import (
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    ProviderTimeoutError,
)
from actors.providers._base import ChatMessage
from actors.providers._settings import LlmSettings

__all__ = ("OpenAiLlm",)

logger = logging.getLogger(__name__)

VENDOR = "openai"
_CLOSE_TIMEOUT_S = 2.0
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")  # the API's pattern for a message "name"
_NAME_MAX = 64


@contextmanager
def _vendor_errors(action: str) -> Iterator[None]:
    """Translate openai-SDK and HTTP failures while trying to ``action``."""
    try:
        yield
    except (openai.APITimeoutError, httpx2.TimeoutException) as exc:
        raise ProviderTimeoutError(f"openai timed out trying to {action}", vendor=VENDOR) from exc
    except openai.APIStatusError as exc:
        raise ProviderStatusError(
            f"openai refused to {action} (HTTP {exc.status_code})",
            vendor=VENDOR,
            status=exc.status_code,
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


def _speaker_name(speaker: str) -> str:
    return _NAME_UNSAFE.sub("_", speaker)[:_NAME_MAX]


def _payload(
    messages: Sequence[ChatMessage], instructions: str
) -> list[ChatCompletionMessageParam]:
    payload: list[ChatCompletionMessageParam] = []
    if instructions:
        payload.append({"role": "system", "content": instructions})
    for message in messages:
        if message.role == "system":
            payload.append({"role": "system", "content": message.content})
        elif message.role == "assistant":
            payload.append({"role": "assistant", "content": message.content})
        elif message.speaker:
            # Several people may talk in one room: the name tells the model who said what.
            name = _speaker_name(message.speaker)
            payload.append({"role": "user", "content": message.content, "name": name})
        else:
            payload.append({"role": "user", "content": message.content})
    return payload


class OpenAiLlm:
    """An OpenAI-compatible chat model, streamed; implements ``LlmProvider``.

    Args:
        api_key: the API key.
        model: the model name.
        base_url: the API's base URL (``.../v1``); None = OpenAI's.
        instructions: the default system prompt (``complete(instructions=...)`` overrides it).
        timeout_s: HTTP timeout (connect, and each read: also the longest gap between tokens).
    """

    name = VENDOR

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        instructions: str = "",
        timeout_s: float = 10.0,
    ) -> None:
        self._client = AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )
        self._model = model
        self._instructions = instructions

    @classmethod
    def from_settings(cls, settings: LlmSettings, *, api_key: str) -> OpenAiLlm:
        return cls(
            api_key=api_key,
            model=settings.model,
            base_url=settings.base_url,
            instructions=settings.instructions,
            timeout_s=settings.timeout_s,
        )

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        """Stream the reply's text deltas.

        Raises:
            ProviderStatusError: the API answered with an error status (401 is not retryable).
            ProviderTimeoutError: connecting or reading took longer than ``timeout_s``.
            ProviderConnectionError: the API is unreachable or dropped the stream.
        """
        payload = _payload(messages, self._instructions if instructions is None else instructions)
        logger.debug("openai request", extra={"pii.messages": payload})
        with _vendor_errors("start a completion"):
            stream = await self._client.chat.completions.create(
                model=self._model, messages=payload, stream=True
            )
        try:
            while True:
                chunk: ChatCompletionChunk
                with _vendor_errors("read the completion"):
                    try:
                        chunk = await anext(stream)
                    except StopAsyncIteration:
                        return
                if chunk.choices and (delta := chunk.choices[0].delta.content):
                    yield delta
        finally:
            # Closing releases the HTTP connection; shielded so a cancelled reply still does it.
            with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
                try:
                    await stream.close()
                except Exception:
                    logger.debug("openai stream close failed", exc_info=True)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
            await self._client.close()
