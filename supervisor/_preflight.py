"""What ``check-config`` checks beyond the config model: what would make ``run`` fail.

The model validates each value on its own; this module tries what the daemon will do with
them, without starting anything: it builds every provider chain as a room host does (so a
vendor without its key, a missing SDK or a missing local model is found; no model is loaded and
nothing is sent), parses every URL, and checks that ``data_dir`` can be written. It never
prints a secret: provider errors name the setting and the environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio

from actors import ConfigError
from actors.providers import build_llm, build_stt, build_tts
from supervisor._config import Config
from supervisor.host import close_providers, open_providers

__all__ = ("config_problems",)

_WEB = ("http", "https")
_SOCKETS = ("ws", "wss", "http", "https")
_REDIS = ("redis", "rediss", "unix")


def config_problems(config: Config) -> list[str]:
    """Every problem found, each one sentence naming the setting to fix (empty: none)."""
    problems = _provider_problems(config)
    urls: list[tuple[str, str | None, tuple[str, ...]]] = [
        ("[livekit] url", config.livekit.url, _SOCKETS),
        ("[persistence] backend_url", config.persistence.backend_url, _WEB),
        ("[redis] url", config.redis.url, _REDIS),
        ("[stt] deepgram_url", config.stt.deepgram_url, _SOCKETS),
        ("[llm] base_url", config.llm.base_url, _WEB),
        ("[tts] cartesia_url", config.tts.cartesia_url, _SOCKETS),
    ]
    problems += [p for name, url, schemes in urls if (p := _url_problem(name, url, schemes))]
    data_dir = _data_dir_problem(config.persistence.data_dir)
    return problems + ([data_dir] if data_dir else [])


def _provider_problems(config: Config) -> list[str]:
    if not config.voice.enabled:
        return []
    if config.voice.providers_factory:
        try:
            opened = open_providers(config)
        except ConfigError as exc:
            return [str(exc)]
        _close(lambda: close_providers(opened.providers))
        return []
    problems: list[str] = []
    builders: list[tuple[Callable[[Any], Any], Any]] = [
        (build_stt, config.stt),
        (build_llm, config.llm),
        (build_tts, config.tts),
    ]
    for build, settings in builders:  # each stage on its own, so that every problem is named
        try:
            chain = build(settings)
        except ConfigError as exc:
            problems.append(str(exc))
        else:
            _close(chain.aclose)
    return problems


def _close(aclose: Callable[[], Awaitable[None]]) -> None:
    async def close() -> None:
        await aclose()

    anyio.run(close, backend="asyncio")


def _url_problem(name: str, url: str | None, schemes: tuple[str, ...]) -> str | None:
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in range)
    except ValueError as exc:
        return f"{name} = {url!r} does not parse ({exc})"
    if parts.scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        return f"{name} = {url!r}: the scheme must be one of {allowed}"
    if parts.scheme != "unix" and not parts.hostname:
        return f"{name} = {url!r} names no host"
    if parts.scheme == "unix" and not parts.path:
        return f"{name} = {url!r} names no socket path"
    return None


def _data_dir_problem(data_dir: Path) -> str | None:
    # The daemon creates data_dir (and its parents) at start: the nearest existing one must
    # be a directory this user can write to.
    existing = data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"[persistence] data_dir = '{data_dir}': {existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"[persistence] data_dir = '{data_dir}': {existing} is not writable by this user"
    return None
