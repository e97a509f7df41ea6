"""What ``check-config`` checks beyond the config model: what would make ``run`` fail.

The model validates each value on its own; this module tries what the daemon will do with
them, without starting anything: it builds every provider chain as a room host does (so a
vendor without its key, a missing SDK or a missing local model is found; no model is loaded and
nothing is sent), parses every URL, and checks that ``data_dir`` can be written and holds no
SQLite file a later release wrote (its schema version, after a rollback). With
``--bind-check``, ``bind_problem`` also binds ``[server] host:port`` for a moment, as ``run``
will. It never prints a secret: provider errors name the setting and the environment variable.
(``--connect``, which talks to LiveKit, the backend, Redis and the providers, is
``supervisor._connect``.)
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio

from actors import ConfigError
from actors.persistence import (
    OUTBOX_SCHEMA_VERSION,
    STORE_SCHEMA_VERSION,
    PersistenceSettings,
    StoreTooNewError,
)
from actors.providers import build_llm, build_stt, build_tts
from supervisor._config import Config, ServerSettings
from supervisor.host import close_providers, open_providers, open_tool_box

__all__ = ("bind_problem", "config_problems", "provider_problems")

_WEB = ("http", "https")
_SOCKETS = ("ws", "wss", "http", "https")
_REDIS = ("redis", "rediss", "unix", "redis+sentinel")


def config_problems(config: Config, *, providers: bool = True) -> list[str]:
    """Every problem found, each one sentence naming the setting to fix (empty: none).

    Args:
        config: the configuration to check.
        providers: include ``provider_problems`` (False: the caller has them already).
    """
    problems = provider_problems(config) if providers else []
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
    return problems + ([data_dir] if data_dir else []) + _schema_problems(config.persistence)


def _schema_problems(settings: PersistenceSettings) -> list[str]:
    """The SQLite files of ``data_dir`` that a later release wrote (after a rollback)."""
    files = [(settings.store_path, STORE_SCHEMA_VERSION)]
    files += [(p, OUTBOX_SCHEMA_VERSION) for p in settings.data_dir.glob("outbox-*.sqlite3")]
    problems = []
    for path, known in files:
        if not path.exists():
            continue
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                found = int(db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            problems.append(f"[persistence] data_dir: {path} cannot be read ({exc})")
            continue
        if found > known:
            problems.append(f"[persistence] data_dir: {StoreTooNewError(path, found, known)}")
    return problems


def provider_problems(config: Config) -> list[str]:
    """What building the provider chains, as a room host does, refuses (each names its key)."""
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
    builders: list[tuple[str, Callable[[Any], Any], Any]] = [
        ("", build_stt, config.stt),
        ("", build_llm, config.llm),
        ("", build_tts, config.tts),
    ]
    for name, profile in config.agents.items():  # an agent's own chains, as a room host builds
        stt, llm, tts = config.stages(name)
        own: list[tuple[dict[str, Any], Callable[[Any], Any], Any]] = [
            (profile.stt, build_stt, stt),
            (profile.llm, build_llm, llm),
            (profile.tts, build_tts, tts),
        ]
        builders += [(f"[agents.{name}] ", build, s) for keys, build, s in own if keys]
    for prefix, build, settings in builders:  # each chain on its own: every problem is named
        try:
            chain = build(settings)
        except ConfigError as exc:
            problems.append(f"{prefix}{exc}")
        else:
            _close(chain.aclose)
    try:  # the tools a room host would offer ([[tools]] without anywhere to run them, ...)
        box = open_tool_box(config)
    except ConfigError as exc:
        problems.append(str(exc))
    else:
        _close(box.aclose)
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


def bind_problem(server: ServerSettings) -> str | None:
    """Whether ``run`` could listen on ``[server] host:port`` now (bound and released at once).

    Port 0 (any free port) always can. Like aiohttp, the socket is bound with ``SO_REUSEADDR``:
    a port another process listens on is refused, one left in TIME_WAIT by a daemon that just
    stopped is not.
    """
    if server.port == 0:
        return None
    where = f"[server] host = {server.host!r}, port = {server.port}"
    try:
        addresses = socket.getaddrinfo(
            server.host, server.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror:
        return f"{where}: the host does not resolve to an address of this machine"
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                return f"{where}: {_bind_advice(exc, server.port)}"
    return None


def _bind_advice(exc: OSError, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            "the port is in use by another process (another daemon? each one on a host needs "
            "its own [server] port and [persistence] data_dir); stop it or pick a free port"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return "the host is not an address of this machine; use one of its addresses or 0.0.0.0"
    if exc.errno == errno.EACCES and port < 1024:
        return "ports below 1024 need privileges the service does not have; use a higher port"
    return f"cannot listen there ({exc.strerror or type(exc).__name__})"
