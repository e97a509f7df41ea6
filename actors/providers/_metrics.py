"""Prometheus metrics of the provider layer (served by the process's ``/metrics``).

Labels are bounded: ``vendor`` is a provider name (``local``, ``deepgram``, ``scripted``,
``openai``, ``cartesia``) and ``stage`` is ``stt``, ``llm`` or ``tts``. Never a room or a user.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ("PROVIDER_ERRORS", "PROVIDER_FALLBACKS", "PROVIDER_FIRST_OUTPUT_SECONDS")

PROVIDER_ERRORS = Counter(
    "voice_supervisor_provider_errors_total",
    "Provider failures (connection, timeout, status), by vendor and stage (stt, llm, tts).",
    ["vendor", "stage"],
)
PROVIDER_FALLBACKS = Counter(
    "voice_supervisor_provider_fallbacks_total",
    "Requests handed to the next provider of a chain, by the vendor that failed and stage.",
    ["vendor", "stage"],
)
PROVIDER_FIRST_OUTPUT_SECONDS = Histogram(
    "voice_supervisor_provider_first_output_seconds",
    "Time to first output: STT stream open, LLM first token, TTS first audio chunk.",
    ["vendor", "stage"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
