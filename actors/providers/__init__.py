"""Speech and language providers: Protocols, local (offline) and vendor implementations."""

from __future__ import annotations

from actors.providers._base import (
    STT_SAMPLE_RATE,
    ChatMessage,
    LlmProvider,
    SpeechEvent,
    SpeechEventKind,
    SttProvider,
    SttStream,
    TtsProvider,
)

__all__ = (
    "STT_SAMPLE_RATE",
    "ChatMessage",
    "LlmProvider",
    "SpeechEvent",
    "SpeechEventKind",
    "SttProvider",
    "SttStream",
    "TtsProvider",
)
