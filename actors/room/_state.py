"""What a room actor knows: its lifecycle, participants, conversation and session summary.

Only the owning actor touches these objects; they are plain (mutable) dataclasses inside
the actor and frozen data once they leave it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from actors._exceptions import IllegalTransition

__all__ = (
    "ConversationHistory",
    "Message",
    "ParticipantState",
    "RoomLifecycle",
    "SessionInfo",
    "parse_room_metadata",
)

logger = logging.getLogger(__name__)


class RoomLifecycle(Enum):
    CREATED = "created"
    CONNECTING = "connecting"
    RUNNING = "running"
    DRAINING = "draining"
    CLOSED = "closed"

    def to(self, target: RoomLifecycle) -> RoomLifecycle:
        """Return ``target`` if the move is legal, else raise ``IllegalTransition``."""
        if target not in _TRANSITIONS[self]:
            raise IllegalTransition(f"a room actor cannot go from {self.value} to {target.value}")
        return target


_TRANSITIONS: dict[RoomLifecycle, set[RoomLifecycle]] = {
    RoomLifecycle.CREATED: {RoomLifecycle.CONNECTING, RoomLifecycle.CLOSED},
    RoomLifecycle.CONNECTING: {RoomLifecycle.RUNNING, RoomLifecycle.DRAINING, RoomLifecycle.CLOSED},
    RoomLifecycle.RUNNING: {RoomLifecycle.DRAINING, RoomLifecycle.CLOSED},
    RoomLifecycle.DRAINING: {RoomLifecycle.CLOSED},
    RoomLifecycle.CLOSED: set(),
}


@dataclass(slots=True)
class ParticipantState:
    identity: str
    name: str
    joined_at: float
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    left_at: float | None = None
    may_set_attributes: bool = False
    """Its token lets it change its own attributes, so none of them can be trusted."""
    kind: int = 0
    """``rtc.ParticipantKind``: a person (standard, SIP), an agent, a recorder (egress)..."""
    sid: str = ""
    """LiveKit's participant sid: one per connection of an identity."""

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "name": self.name,
            "joined_at": self.joined_at,
            "metadata": self.metadata,
            "attributes": self.attributes,
            "left_at": self.left_at,
        }


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of the conversation."""

    role: str
    content: str
    ts: float
    speaker: str | None = None
    interrupted: bool = False
    name: str | None = None
    """``tool_call`` and ``tool`` messages: the tool's name."""
    tool_call_id: str | None = None
    """``tool_call`` and ``tool`` messages: the call's id (a result answers its call)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.name is None and self.tool_call_id is None:  # a turn: the contract's fields
            del data["name"], data["tool_call_id"]
        return data


@dataclass(slots=True)
class ConversationHistory:
    """The conversation so far, oldest first, including restored messages."""

    messages: list[Message] = field(default_factory=list)
    restored: int = 0

    def append(self, message: Message) -> None:
        self.messages.append(message)

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Prepend messages loaded from the store or the backend (oldest first)."""
        loaded = [
            Message(
                role=str(r["role"]),
                content=str(r["content"]),
                ts=float(r.get("ts", 0.0)),
                speaker=r.get("speaker"),
                interrupted=bool(r.get("interrupted", False)),
                name=r.get("name"),
                tool_call_id=r.get("tool_call_id"),
            )
            for r in rows
        ]
        self.messages[:0] = loaded
        self.restored += len(loaded)

    def clear(self) -> None:
        self.messages.clear()
        self.restored = 0

    @property
    def new_messages(self) -> list[Message]:
        """Messages of this session (restored ones excluded)."""
        return self.messages[self.restored :]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """Room metadata as the backend set it, parsed leniently."""

    conversation_id: str | None
    user_id: str | None
    instructions: str | None = None
    voice: str | None = None
    language: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def _encodes(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, TypeError):
        return False
    return True


def parse_room_metadata(text: str) -> SessionInfo:
    """Parse the room's metadata JSON; anything invalid is logged and ignored, never fatal."""
    if not text.strip():
        return SessionInfo(conversation_id=None, user_id=None)
    try:
        raw = json.loads(text)
    except ValueError:
        logger.warning("room metadata is not JSON; running without conversation_id/user_id")
        return SessionInfo(conversation_id=None, user_id=None)
    if not isinstance(raw, dict):
        logger.warning("room metadata is JSON but not an object; ignoring it")
        return SessionInfo(conversation_id=None, user_id=None)
    if not _encodes(raw):
        # A lone surrogate ("\ud800") parses but cannot be stored: every event would be refused.
        logger.warning("room metadata holds text that is not valid Unicode; ignoring it")
        return SessionInfo(conversation_id=None, user_id=None)

    def text_field(key: str) -> str | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, str | int):
            return str(value) or None
        logger.warning("room metadata field has the wrong type; ignoring it", extra={"key": key})
        return None

    return SessionInfo(
        conversation_id=text_field("conversation_id"),
        user_id=text_field("user_id"),
        instructions=text_field("instructions"),
        voice=text_field("voice"),
        language=text_field("language"),
        raw=raw,
    )
