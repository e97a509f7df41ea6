"""Settings of the development playground (``[playground]`` in config.toml).

Off by default: the token endpoint hands a room token to anyone who can reach the daemon's port,
so it also stays on loopback unless ``allow_remote`` is set (see ``supervisor._exposure``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from actors import Settings

__all__ = ("PlaygroundSettings",)


class PlaygroundSettings(Settings):
    enabled: bool = False
    """Serve the playground page at ``/playground`` and its token endpoint. For development
    only: anyone who reaches the port can open rooms with the agent (never in production).
    ``voice-supervisor run --playground`` (what ``make run`` uses) turns it on for one run."""

    allow_remote: bool = False
    """Serve the playground although ``[server] host`` is not loopback, and answer requests
    whatever their ``Host`` header. Off: the config is refused on a non-loopback host, and
    requests whose ``Host`` is not ``127.0.0.1``, ``::1`` or ``localhost`` get 421. On: every
    start logs a warning."""

    origins: tuple[str, ...] = ()
    """Origins (``scheme://host[:port]``) allowed to ask for tokens besides
    ``http://{127.0.0.1,localhost,[::1]}:<port>`` and ``http://<[server] host>:<port>``, e.g.
    the address you open the page at with ``allow_remote`` on a wildcard host."""

    room_prefix: str = Field(default="playground-", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """Rooms the playground opens are named this plus a random suffix; ``[agent] rooms`` must
    match them for the agent to join."""

    role: str = Field(default="operator", max_length=128)
    """Role written into the tokens the playground mints (the ``[data] role_attribute``), so
    its command form can try every command; ``""`` = a participant with no role."""

    token_ttl_s: float = Field(default=3600.0, ge=60, le=86_400)
    """Lifetime of a participant token minted by ``POST /playground/token``."""

    messages_limit: int = Field(default=200, ge=1, le=10_000)
    """Most stored messages ``GET /playground/conversations/{id}/messages`` returns."""

    conversations_kept: int = Field(default=1000, ge=1, le=100_000)
    """Conversation ids the playground remembers having opened (since the daemon started).
    Only those can be resumed or read back; beyond this the oldest is forgotten."""

    @field_validator("origins")
    @classmethod
    def _plain_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{origin!r} is not an origin like http://host:port")
            if parts.path or parts.query or parts.fragment or parts.username:
                raise ValueError(f"{origin!r} has more than scheme://host[:port]")
        return tuple(o.lower() for o in value)
