"""The three provider seams: streaming STT, streaming LLM, streaming TTS.

A vendor module implements one of these Protocols and nothing more: raw calls, its own error
translation (vendor exceptions become ``ProviderError`` subclasses, ``from exc``) and its own
logger. Retries, fallbacks, timeouts and metrics live in the shared wrappers (``_fallback.py``).

Audio is always int16 little-endian mono PCM (``bytes``). STT takes 16 kHz; TTS yields at its
own ``sample_rate``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, runtime_checkable

__all__ = (
    "STT_SAMPLE_RATE",
    "ChatMessage",
    "LlmItem",
    "LlmProvider",
    "SpeechEvent",
    "SpeechEventKind",
    "SttProvider",
    "SttStream",
    "ToolCall",
    "ToolCallingLlm",
    "ToolDefinition",
    "TtsProvider",
)

STT_SAMPLE_RATE = 16_000


class SpeechEventKind(Enum):
    START_OF_SPEECH = "start_of_speech"
    """The speaker started talking (VAD or the vendor's speech-started); drives barge-in."""
    INTERIM = "interim"
    """A partial transcript of the current utterance (may change)."""
    PREFLIGHT = "preflight"
    """The recogniser's likely final transcript, before the FINAL (which may still differ):
    the reply's LLM call may start on it and is thrown away if the FINAL says otherwise."""
    FINAL = "final"
    """The final transcript of an utterance: this is a user turn."""
    END_OF_SPEECH = "end_of_speech"
    """The speaker stopped talking (may come before or after the FINAL)."""


@dataclass(frozen=True, slots=True)
class SpeechEvent:
    """One event of a streaming recogniser.

    Attributes:
        kind: what happened.
        text: the transcript (INTERIM/FINAL), else "".
        speech_duration_s: for START_OF_SPEECH/INTERIM (and FINAL where known, else 0), how
            long the speaker has been talking.
        end_of_turn_ms: for FINAL, when the recogniser knows it: from the last speech heard to
            its decision that the turn was over (the silence it waited).
        stt_final_ms: for FINAL, when known: from that decision to the final transcript.
    """

    kind: SpeechEventKind
    text: str = ""
    speech_duration_s: float = 0.0
    end_of_turn_ms: float | None = None
    stt_final_ms: float | None = None


class SttStream(Protocol):
    """One participant's recognition stream, opened by ``SttProvider.stream()``."""

    async def send(self, pcm: bytes) -> None:
        """Push 16 kHz mono int16 audio (any length; 10–100 ms chunks are typical)."""
        ...

    async def end_input(self) -> None:
        """No more audio: flush, emit the last FINAL if any, then end ``events()``."""
        ...

    def events(self) -> AsyncIterator[SpeechEvent]:
        """Recognition events, in order, until the stream ends."""
        ...


class SttProvider(Protocol):
    name: str

    def stream(self, *, language: str | None = None) -> AbstractAsyncContextManager[SttStream]:
        """Open a stream; the context manager owns its connection and background tasks.

        Raises:
            ProviderError: the vendor could not be reached or refused (on enter or later).
        """
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for, complete (its argument deltas joined).

    Attributes:
        id: the model's id of the call (its result answers to it).
        name: the tool's name.
        arguments: the arguments as the model wrote them (JSON text, not yet validated).
    """

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool as the model is offered it: a name, what it does, its JSON-Schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any]


LlmItem = str | ToolCall
"""What a tool-calling completion streams: text deltas, and each tool call once complete."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the history a model sees.

    ``role`` is ``system``, ``user``, ``assistant``, ``tool_call`` (the assistant asked for a
    call: ``content`` is its arguments' JSON, ``name`` the tool, ``tool_call_id`` its id) or
    ``tool`` (a call's result: ``content``, with the call's ``name`` and ``tool_call_id``).
    """

    role: str
    content: str
    speaker: str | None = None
    name: str | None = None
    tool_call_id: str | None = None


class LlmProvider(Protocol):
    name: str

    def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        """Stream the reply as text deltas (an async generator; ``aclose()`` cancels it).

        Raises:
            ProviderError: on any vendor failure.
        """
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ToolCallingLlm(LlmProvider, Protocol):
    """A model that can call tools (a plain ``LlmProvider`` is offered none)."""

    def complete_with_tools(
        self,
        messages: Sequence[ChatMessage],
        *,
        instructions: str | None = None,
        tools: Sequence[ToolDefinition] = (),
    ) -> AsyncGenerator[LlmItem]:
        """Stream the reply's text deltas and, once each is complete, its tool calls.

        Raises:
            ProviderError: on any vendor failure.
        """
        ...


class TtsProvider(Protocol):
    name: str
    sample_rate: int

    def synthesize(
        self, text: str, *, voice: str | None = None, language: str | None = None
    ) -> AsyncGenerator[bytes]:
        """Stream int16 mono PCM at ``sample_rate`` for ``text`` (one sentence or more).

        Raises:
            ProviderError: on any vendor failure.
        """
        ...

    async def aclose(self) -> None: ...
