"""What a room actor needs from the rest of the process, as Protocols (ports)."""

from __future__ import annotations

from typing import Any, Protocol

from actors._events import Event

__all__ = ("Persistence",)


class Persistence(Protocol):
    """The persistence actor as a room actor sees it."""

    def emit(self, event: Event) -> None:
        """Queue an event durably; never blocks, never awaits the network."""
        ...

    async def agent_joined(self, room: str, metadata: dict[str, Any]) -> str:
        """A conversation id for a room whose metadata names none."""
        ...

    async def recent_messages(self, conversation_id: str, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` messages of a conversation, oldest first."""
        ...
