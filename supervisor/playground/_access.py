"""Who the playground answers: the ``Host`` and ``Origin`` checks, browser sessions, and the
conversations it opened.

- ``Host``: without ``allow_remote``, only loopback names (``127.0.0.1``, ``::1``,
  ``localhost``, any port). A DNS-rebinding page reaches the port under its own name, so its
  requests carry that name and are refused.
- ``Origin``: compared with a fixed set built from ``[server] host``/``port`` and
  ``[playground] origins``, never with the request's ``Host`` (which the requester chooses).
- Sessions: a random cookie per browser; the ``user_id`` of its rooms is derived from it with a
  per-process key, so a client cannot choose whose user id it gets.
- Conversations: the ids it created, bounded; only those can be resumed or read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from urllib.parse import urlsplit

from aiohttp import web

from supervisor.playground._settings import PlaygroundSettings

__all__ = ("SESSION_COOKIE", "Access", "Conversations", "origin_key")

SESSION_COOKIE = "playground_session"
_SESSION = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def origin_key(origin: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin, default ports filled in; None if malformed."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, _DEFAULT_PORTS[parts.scheme] if port is None else port


class Access:
    """The ``Host``/``Origin`` checks and the session user ids of one playground.

    Args:
        settings: ``[playground]``.
        host: ``[server] host``.
        port: ``[server] port``; 0 means the port each request arrived on (tests bind port 0).
    """

    def __init__(self, settings: PlaygroundSettings, *, host: str, port: int) -> None:
        self._any_host = settings.allow_remote
        self._port = port
        names = set(_LOOPBACK_NAMES)
        if host.strip().lower() not in _WILDCARDS:
            names.add(host.strip().lower().strip("[]"))
        self._names = frozenset(names)
        self._origins = frozenset(k for k in map(origin_key, settings.origins) if k is not None)
        self._user_key = secrets.token_bytes(32)

    def host_allowed(self, request: web.Request) -> bool:
        """The request's ``Host`` is a loopback name, or ``allow_remote`` accepts any."""
        if self._any_host:
            return True
        host = request.headers.get("Host")
        if host is None:
            return False
        try:
            name = urlsplit(f"//{host}").hostname
        except ValueError:
            return False
        return name in _LOOPBACK_NAMES

    def origin_allowed(self, request: web.Request) -> bool:
        """No ``Origin`` (not a browser), or one of the allowed origins."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        key = origin_key(origin)
        if key is None:
            return False
        if key in self._origins:
            return True
        scheme, name, port = key
        return scheme == "http" and name in self._names and port == self._local_port(request)

    def user_id(self, session: str) -> str:
        """The user id of a browser session: stable for the session, not choosable."""
        digest = hmac.new(self._user_key, session.encode(), hashlib.sha256).hexdigest()
        return f"playground-{digest[:16]}"

    @staticmethod
    def session_of(request: web.Request) -> str | None:
        """The request's session cookie, if it is one the playground could have minted."""
        session = request.cookies.get(SESSION_COOKIE)
        return session if session is not None and _SESSION.match(session) else None

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(24)

    def _local_port(self, request: web.Request) -> int | None:
        if self._port:
            return self._port
        # The socket the request came in on, not its Host header (which the requester picks).
        sockname = (
            None if request.transport is None else request.transport.get_extra_info("sockname")
        )
        return int(sockname[1]) if sockname else None


class Conversations:
    """The conversation ids the playground created, the oldest forgotten beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, conversation_id: str) -> None:
        self._ids[conversation_id] = None
        self._ids.move_to_end(conversation_id)
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def __contains__(self, conversation_id: object) -> bool:
        return conversation_id in self._ids
