"""Speech and language providers: Protocols, local (offline) and vendor implementations.

The room actor builds one chain per stage with ``build_stt``/``build_llm``/``build_tts`` (once
per process) and talks only to the Protocols. Vendor modules (``deepgram``, ``openai_llm``,
``cartesia_tts``) are imported by the factories when a chain names them, never here.
"""

from __future__ import annotations

from actors.providers._base import (
    STT_SAMPLE_RATE,
    ChatMessage,
    LlmItem,
    LlmProvider,
    SpeechEvent,
    SpeechEventKind,
    SttProvider,
    SttStream,
    ToolCall,
    ToolCallingLlm,
    ToolDefinition,
    TtsProvider,
)
from actors.providers._factory import build_llm, build_stt, build_tts
from actors.providers._fallback import FallbackLlm, FallbackStt, FallbackTts
from actors.providers._health import merge_health, provider_health
from actors.providers._settings import LlmSettings, Rule, SttSettings, TtsSettings, overridden
from actors.providers.local_stt import LocalStt
from actors.providers.local_tts import LocalTts
from actors.providers.scripted_llm import ScriptedLlm

__all__ = (
    "STT_SAMPLE_RATE",
    "ChatMessage",
    "FallbackLlm",
    "FallbackStt",
    "FallbackTts",
    "LlmItem",
    "LlmProvider",
    "LlmSettings",
    "LocalStt",
    "LocalTts",
    "Rule",
    "ScriptedLlm",
    "SpeechEvent",
    "SpeechEventKind",
    "SttProvider",
    "SttSettings",
    "SttStream",
    "ToolCall",
    "ToolCallingLlm",
    "ToolDefinition",
    "TtsProvider",
    "TtsSettings",
    "build_llm",
    "build_stt",
    "build_tts",
    "merge_health",
    "overridden",
    "provider_health",
)
