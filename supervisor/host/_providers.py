"""The providers a room host opens once and shares among its rooms.

Building them is cheap; their models load when warmed up, which a host does once its first room
has joined, not at start-up: an idle worker then holds no model, and each model loads only in
a process that has a room to use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from actors import ConfigError
from actors.providers import (
    LlmProvider,
    SttProvider,
    TtsProvider,
    build_llm,
    build_stt,
    build_tts,
)
from actors.room import Providers
from actors.tools import ToolBox, open_tools
from supervisor._config import Config

__all__ = (
    "OpenedProviders",
    "close_providers",
    "open_agent_providers",
    "open_providers",
    "open_tool_box",
)


async def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class OpenedProviders:
    """The chains, and how to load their models (about a second for the local ones)."""

    providers: Providers
    warm_up: Callable[[], Awaitable[None]] = _nothing


def open_providers(config: Config) -> OpenedProviders:
    """Build the STT, LLM and TTS chains every room of this process shares (no model loaded).

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
        if providers.tools is None:
            providers = replace(providers, tools=open_tool_box(config))
        return OpenedProviders(providers)
    stt, llm, tts = build_stt(config.stt), build_llm(config.llm), build_tts(config.tts)

    async def warm_up() -> None:
        for chain in (stt, llm, tts):
            await chain.warm_up()

    built = Providers(
        stt=stt,
        llm=llm,
        tts=tts,
        greeting=config.llm.greeting,
        instructions=config.llm.instructions,
        tools=open_tool_box(config),
    )
    return OpenedProviders(built, warm_up)


def open_agent_providers(config: Config, agent: str, shared: Providers) -> Providers:
    """The providers of agent ``agent``: ``shared`` with each stage its profile changes
    (``[agents.NAME.stt]``, ``.llm``, ``.tts``) built from its own settings, as
    ``open_providers`` builds the shared ones. ``shared`` itself for a profile that changes
    none, and with a ``providers_factory`` (whose providers serve every agent).

    Raises:
        ConfigError: a vendor of the agent's own chains has no API key, or a model is missing.
    """
    profile = config.agents.get(agent)
    if profile is None or not profile.own_providers or config.voice.providers_factory:
        return shared
    stt, llm, tts = config.stages(agent)
    try:  # building opens nothing (models load and connections open on first use)
        own = replace(
            shared,
            stt=build_stt(stt) if profile.stt else shared.stt,
            llm=build_llm(llm) if profile.llm else shared.llm,
            tts=build_tts(tts) if profile.tts else shared.tts,
        )
    except ConfigError as exc:
        raise ConfigError(f"[agents.{agent}] {exc}") from None
    if profile.llm:
        own = replace(own, greeting=llm.greeting, instructions=llm.instructions)
    return own


def open_tool_box(config: Config) -> ToolBox:
    """The process's tools (``[[tools]]``, the backend's, MCP servers', built-ins).

    Raises:
        ConfigError: a declared tool cannot be invoked anywhere, or takes a taken name.
    """
    return open_tools(
        config.tool_calls,
        config.tools,
        config.mcp_servers,
        backend_url=config.persistence.backend_url,
        backend_token=config.persistence.backend_token,
    )


async def close_providers(providers: Providers, shared: Providers | None = None) -> None:
    """Close the three chains (each bounded by its own close timeouts) and the tools' client;
    with ``shared`` (an agent's own providers): only the chains that are not ``shared``'s."""
    if shared is not None:
        own: list[SttProvider | LlmProvider | TtsProvider] = []
        own += [providers.stt] if providers.stt is not shared.stt else []
        own += [providers.llm] if providers.llm is not shared.llm else []
        own += [providers.tts] if providers.tts is not shared.tts else []
        for provider in own:
            await provider.aclose()
        return
    for provider in (providers.stt, providers.llm, providers.tts):
        await provider.aclose()
    if providers.tools is not None:
        await providers.tools.aclose()
