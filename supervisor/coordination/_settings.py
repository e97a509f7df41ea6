"""Settings of the Redis coordination (``[redis]`` in config.toml).

Without ``url`` the daemon runs alone: no leases, no per-user limits, and nothing else changes.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from pydantic import Field, field_validator, model_validator

from actors import Settings

__all__ = ("SENTINEL_SCHEME", "RedisSettings", "SentinelParts", "sentinel_parts")

SENTINEL_SCHEME = "redis+sentinel://"
_SENTINEL_PORT = 26379


@dataclass(frozen=True, slots=True)
class SentinelParts:
    """A ``redis+sentinel://`` URL, taken apart."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None


def sentinel_parts(url: str) -> SentinelParts:
    """Parse ``redis+sentinel://[[user]:password@]host:port[,host:port...]/SERVICE[/DB]``.

    Raises:
        ValueError: naming the part that is missing or wrong (never echoing the password).
    """
    netloc, _, path = url[len(SENTINEL_SCHEME) :].partition("/")
    credentials, _, hosts = netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    sentinels = []
    for host in filter(None, hosts.split(",")):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        if not name or (port and not port.isdigit()):
            raise ValueError("each sentinel must be host or host:port, separated by commas")
        sentinels.append((name, int(port) if port else _SENTINEL_PORT))
    if not sentinels:
        raise ValueError("a redis+sentinel:// URL needs at least one sentinel host:port")
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError(
            "a redis+sentinel:// URL ends with the primary's service name and an optional "
            "database number: .../mymaster or .../mymaster/0"
        )
    return SentinelParts(
        tuple(sentinels),
        parts[0],
        int(parts[1]) if len(parts) == 2 else 0,
        username or None,
        password or None,
    )


def _default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class RedisSettings(Settings):
    url: str | None = None
    """Redis URL (``redis://``, ``rediss://`` for TLS, ``unix://``), or Sentinel's:
    ``redis+sentinel://[[user]:password@]host:port[,host:port...]/SERVICE[/DB]`` (the sentinels,
    and the primary's service name; the password is the primary's). The REDIS_URL environment
    variable overrides it. Unset = a single daemon: no leases, no per-user limits."""

    key_prefix: str = Field(default="voice-supervisor:", pattern=r"^[A-Za-z0-9_.:{}-]{0,64}$")
    """Prefix of every key this daemon writes, so several deployments can share one Redis."""

    lease_ttl_s: float = Field(default=10.0, ge=0.5, le=600)
    """Lifetime of a room lease; renewed every third of it. A dead daemon's rooms are taken
    over after at most this plus ``[supervisor] reconcile_interval_s``."""

    node_id: str = Field(default_factory=_default_node_id, min_length=1, max_length=128)
    """This daemon's name in the leases it holds (default: hostname-pid); unique per daemon."""

    balance_grace_s: float = Field(default=2.0, ge=0, le=600)
    """For this long a free room is left to the daemons holding the fewest leases (any other
    daemon takes it after that); keep it above ``[supervisor] reconcile_interval_s`` for an even
    spread. 0 = first come, first served."""

    timeout_s: float = Field(default=1.0, gt=0, le=60)
    """Timeout of one Redis command (and of connecting); must be under a third of the lease TTL."""

    max_rooms_per_user: int | None = Field(default=None, ge=1, le=100_000)
    """Most rooms one user (room metadata ``user_id``) may converse in at once, across every
    daemon; the agent tells the user in the others. Unset = no cap."""

    turns_per_minute_per_user: int | None = Field(default=None, ge=1, le=100_000)
    """Most answers the agent composes for one user per sliding minute, across every room and
    daemon; beyond it the agent says ``turn_limit_message`` instead. Unset = no limit."""

    room_limit_message: str = Field(
        default="You already have the most conversations open that I can take at once. "
        "Please finish one of them, and I'll answer you here.",
        min_length=1,
        max_length=500,
    )
    """Said (and captioned) instead of an answer in a room beyond ``max_rooms_per_user``."""

    turn_limit_message: str = Field(
        default="You're going a bit fast for me. Please wait a moment before asking again.",
        min_length=1,
        max_length=500,
    )
    """Said (and captioned) instead of an answer beyond ``turns_per_minute_per_user``."""

    @field_validator("url")
    @classmethod
    def _sentinel_url(cls, value: str | None) -> str | None:
        if value is not None and value.startswith(SENTINEL_SCHEME):
            sentinel_parts(value)  # raises ValueError naming what is missing
        return value

    @model_validator(mode="after")
    def _timeout_under_renewal(self) -> RedisSettings:
        if self.timeout_s * 3 > self.lease_ttl_s:
            raise ValueError(
                f"timeout_s ({self.timeout_s}) must be at most a third of lease_ttl_s "
                f"({self.lease_ttl_s}), or a slow command could outlive a lease"
            )
        return self

    @property
    def enabled(self) -> bool:
        """True when a Redis URL is configured."""
        return bool(self.url)

    @property
    def renew_interval_s(self) -> float:
        """How often a held lease is renewed: a third of its TTL."""
        return self.lease_ttl_s / 3
