"""Persistence events: what room actors emit and the backend receives.

An ``Event`` is immutable and carries its own unique id, so every retry of a batch is
idempotent on the backend. The JSON shape is the backend contract (``docs/backend-openapi.yaml``).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ("Event", "EventType", "derived_event_id", "new_event_id")


class EventType(StrEnum):
    """The event types of the backend contract."""

    TURN = "turn"
    PARTICIPANT_CONNECTED = "participant_connected"
    PARTICIPANT_DISCONNECTED = "participant_disconnected"
    AGENT_JOINED = "agent_joined"
    SESSION = "session"
    FILE = "file"
    ERROR = "error"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    TOOL_ERROR = "tool_error"


def new_event_id() -> str:
    """A fresh, globally unique event id, time-ordered like a UUIDv7.

    48 bits of milliseconds then 80 random bits: ids sort by creation, so the id indexes of the
    outbox and of the backend grow at one end instead of touching pages all over (the reference
    backend stores events about 1.5x faster with them; see docs/backend-contract.md).
    """
    return f"EV_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def derived_event_id(kind: str, *facts: str) -> str:
    """The id of an event that more than one emitter may report (an actor restarted, another
    agent, another daemon): the same facts give the same id, so the backend, which
    de-duplicates by event id, stores it once."""
    key = "\x1f".join(facts)
    return f"EV_{kind}_" + hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Event:
    """One fact about a room, on its way to the backend.

    Attributes:
        type: what happened.
        room: the LiveKit room name.
        conversation_id: the conversation the room belongs to.
        data: type-specific JSON-serialisable payload.
        ts: when it happened, seconds since the epoch.
        id: unique id; the backend de-duplicates by it.
    """

    type: EventType
    room: str
    conversation_id: str
    data: dict[str, Any]
    ts: float
    id: str = field(default_factory=new_event_id)

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON object for this event."""
        return {
            "id": self.id,
            "type": str(self.type),
            "ts": self.ts,
            "room": self.room,
            "conversation_id": self.conversation_id,
            "data": self.data,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Event:
        """Rebuild an event from its contract JSON (``KeyError``/``ValueError`` if malformed)."""
        return cls(
            type=EventType(obj["type"]),
            room=str(obj["room"]),
            conversation_id=str(obj["conversation_id"]),
            data=dict(obj["data"]),
            ts=float(obj["ts"]),
            id=str(obj["id"]),
        )
