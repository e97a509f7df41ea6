"""Build each stage's provider chain from its settings.

Vendor modules are imported only when a chain names them, so the vendor SDKs stay an optional
extra (``voice-supervisor[vendors]``) and a local-only daemon never imports them. Build once per
process and share the result between rooms: the local providers pool their models (a
pocketsphinx decoder is ~95 MB) and the vendor ones their connections.
"""

from __future__ import annotations

from pydantic import SecretStr

from actors._exceptions import ConfigError
from actors.providers._base import LlmProvider, SttProvider, TtsProvider
from actors.providers._fallback import FallbackLlm, FallbackStt, FallbackTts
from actors.providers._settings import LlmSettings, SttSettings, TtsSettings

__all__ = ("build_llm", "build_stt", "build_tts")

_EXTRA = "pip install 'voice-supervisor[vendors]'"


def _api_key(secret: SecretStr | None, section: str, variable: str) -> str:
    if secret is None or not secret.get_secret_value():
        raise ConfigError(f"[{section}] api_key is not set: export {variable} (or set it)")
    return secret.get_secret_value()


def _missing_sdk(section: str, vendor: str, exc: ImportError) -> ConfigError:
    return ConfigError(
        f"[{section}] uses {vendor!r} but its SDK is not installed ({exc.name}): {_EXTRA}"
    )


def build_stt(settings: SttSettings) -> FallbackStt:
    """The STT chain ``[provider, *fallback]``.

    Raises:
        ConfigError: a vendor in the chain has no API key or its SDK is missing.
    """
    providers: list[SttProvider] = []
    for vendor in settings.chain:
        if vendor == "local":
            from actors.providers.local_stt import LocalStt

            providers.append(LocalStt.from_settings(settings))
        else:
            key = _api_key(settings.api_key, "stt", "DEEPGRAM_API_KEY")
            try:
                from actors.providers.deepgram import DeepgramStt
            except ImportError as exc:
                raise _missing_sdk("stt", vendor, exc) from None
            providers.append(DeepgramStt.from_settings(settings, api_key=key))
    return FallbackStt(providers, timeout_s=settings.timeout_s)


def build_llm(settings: LlmSettings) -> FallbackLlm:
    """The LLM chain ``[provider, *fallback]``.

    Raises:
        ConfigError: a vendor in the chain has no API key or its SDK is missing.
    """
    providers: list[LlmProvider] = []
    for vendor in settings.chain:
        if vendor == "scripted":
            from actors.providers.scripted_llm import ScriptedLlm

            providers.append(ScriptedLlm.from_settings(settings))
        else:
            # A local server (Ollama, vLLM, llama.cpp) often asks for no key; OpenAI does.
            given = settings.api_key is not None and settings.api_key.get_secret_value()
            key = (
                _api_key(settings.api_key, "llm", "OPENAI_API_KEY")
                if settings.base_url is None or given
                else None
            )
            try:
                from actors.providers.openai_llm import OpenAiLlm
            except ImportError as exc:
                raise _missing_sdk("llm", vendor, exc) from None
            providers.append(OpenAiLlm.from_settings(settings, api_key=key))
    return FallbackLlm(providers, timeout_s=settings.timeout_s)


def build_tts(settings: TtsSettings) -> FallbackTts:
    """The TTS chain ``[provider, *fallback]``; fallbacks use their own default voice.

    Raises:
        ConfigError: a vendor in the chain has no API key or its SDK is missing, or the local
            voice is not on this machine.
    """
    providers: list[TtsProvider] = []
    for index, vendor in enumerate(settings.chain):
        if vendor == "local":
            from actors.providers.local_tts import DEFAULT_VOICE, LocalTts

            voice = settings.voice if index == 0 else DEFAULT_VOICE
            providers.append(LocalTts.from_settings(settings, voice=voice))
        else:
            key = _api_key(settings.api_key, "tts", "CARTESIA_API_KEY")
            try:
                from actors.providers.cartesia_tts import CartesiaTts
            except ImportError as exc:
                raise _missing_sdk("tts", vendor, exc) from None
            cartesia_voice = settings.voice if index == 0 else settings.cartesia_voice
            providers.append(CartesiaTts.from_settings(settings, api_key=key, voice=cartesia_voice))
    return FallbackTts(providers, timeout_s=settings.timeout_s)
