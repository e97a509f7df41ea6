"""Settings of a room actor (the ``[agent]`` section, less the room-selection rules)."""

from __future__ import annotations

from pydantic import Field

from actors._settings import Settings

__all__ = ("RoomSettings",)


class RoomSettings(Settings):
    identity: str = Field(default="voice-agent", min_length=1, max_length=128)
    """Participant identity the agent joins with (the same in every room)."""

    name: str = Field(default="Assistant", max_length=128)
    """Display name of the agent participant."""

    connect_timeout_s: float = Field(default=10.0, gt=0, le=120)
    """How long joining a room may take before the actor gives up (and is restarted)."""

    close_timeout_s: float = Field(default=5.0, gt=0, le=120)
    """How long the final steps of an actor (session summary, disconnect) may take."""

    inbox_size: int = Field(default=1024, ge=16, le=1_000_000)
    """Capacity of the actor's control mailbox (participant, track and data events)."""
