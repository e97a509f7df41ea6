"""The providers a room host opens once and shares among its rooms."""

from __future__ import annotations

import importlib

from actors import ConfigError
from actors.providers import build_llm, build_stt, build_tts
from actors.room import Providers
from supervisor._config import Config

__all__ = ("close_providers", "open_providers")


async def open_providers(config: Config) -> Providers:
    """Build and warm up the STT, LLM and TTS chains every room of this process shares.

    Warming up loads the local models now (about a second), so the first reply of the first
    room does not pay for it and time out into a fallback.

    Raises:
        ConfigError: a configured vendor has no API key, or a local model is missing.
    """
    if config.voice.providers_factory:
        module_name, _, attribute = config.voice.providers_factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"[voice] providers_factory = {config.voice.providers_factory!r}: cannot import"
                f" it ({type(exc).__name__}); give 'package.module:function'"
            ) from None
        providers: Providers = factory(config)
        return providers
    stt, llm, tts = build_stt(config.stt), build_llm(config.llm), build_tts(config.tts)
    for chain in (stt, llm, tts):
        await chain.warm_up()
    return Providers(
        stt=stt,
        llm=llm,
        tts=tts,
        greeting=config.llm.greeting,
        instructions=config.llm.instructions,
    )


async def close_providers(providers: Providers) -> None:
    """Close the three chains (each bounded by its own close timeouts)."""
    for provider in (providers.stt, providers.llm, providers.tts):
        await provider.aclose()
