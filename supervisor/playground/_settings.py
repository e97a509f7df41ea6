"""Settings of the development playground (``[playground]`` in config.toml).

Off by default: the token endpoint hands a room token to anyone who can reach the daemon's port.
"""

from __future__ import annotations

from pydantic import Field

from actors import Settings

__all__ = ("PlaygroundSettings",)


class PlaygroundSettings(Settings):
    enabled: bool = False
    """Serve the playground page at ``/playground`` and its token endpoint. For development
    only: anyone who reaches the port can open rooms with the agent (never in production)."""

    room_prefix: str = Field(default="playground-", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """Rooms the playground opens are named this plus a random suffix; ``[agent] rooms`` must
    match them for the agent to join."""

    token_ttl_s: float = Field(default=3600.0, ge=60, le=86_400)
    """Lifetime of a participant token minted by ``POST /playground/token``."""

    messages_limit: int = Field(default=200, ge=1, le=10_000)
    """Most stored messages ``GET /playground/conversations/{id}/messages`` returns."""
