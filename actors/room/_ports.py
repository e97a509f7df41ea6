"""What a room actor needs from the rest of the process, as Protocols (ports)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from actors._events import Event
from actors.providers import LlmProvider, SttProvider, TtsProvider
from actors.tools import ToolBox

__all__ = ("Persistence", "Providers", "TurnRecorder")


@dataclass(frozen=True, slots=True)
class Providers:
    """The providers a room actor speaks with (shared by the rooms of a process)."""

    stt: SttProvider
    llm: LlmProvider
    tts: TtsProvider
    greeting: str = ""
    instructions: str = ""
    tools: ToolBox | None = None
    """The process's tools (the room host sets them from its config); None: no tools."""


TurnRecorder = Callable[[str, str, "str | None", bool, dict[str, float]], None]
"""record_turn(role, content, speaker, interrupted, latency_ms)."""


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
