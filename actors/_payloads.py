"""The payload of each event type: one typed definition, used by whoever builds an event and
by the contract check (``actors.persistence._contract`` derives its field rules from these).

Field names are the backend contract's (``docs/backend-openapi.yaml``). A field without a
default is required; ``X | None`` may be null; other keys in an event's ``data`` are allowed
(the contract is open), but nothing here emits them.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Union

from actors._events import EventType

__all__ = (
    "PAYLOADS",
    "AgentJoined",
    "ErrorData",
    "FileData",
    "ParticipantConnected",
    "ParticipantDisconnected",
    "Payload",
    "SessionData",
    "ToolCallData",
    "ToolErrorData",
    "ToolResultData",
    "TurnData",
    "json_fields",
    "payload_json",
)


@dataclass(frozen=True, slots=True)
class TurnData:
    type: ClassVar[EventType] = EventType.TURN
    role: str
    content: str
    speaker: str | None = None
    interrupted: bool = False
    latency_ms: dict[str, float] = field(default_factory=dict)
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class ParticipantConnected:
    type: ClassVar[EventType] = EventType.PARTICIPANT_CONNECTED
    identity: str
    name: str | None = None
    metadata: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    kind: int = 0
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class ParticipantDisconnected:
    type: ClassVar[EventType] = EventType.PARTICIPANT_DISCONNECTED
    identity: str
    name: str | None = None
    reason: str | None = None
    duration_s: float = 0.0
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class AgentJoined:
    type: ClassVar[EventType] = EventType.AGENT_JOINED
    identity: str | None = None
    user_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    restored_messages: int = 0
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class SessionData:
    type: ClassVar[EventType] = EventType.SESSION
    started_at: float
    ended_at: float
    room: str | None = None
    conversation_id: str | None = None
    user_id: str | None = None
    duration_s: float = 0.0
    end_reason: str | None = None
    participants: list[dict[str, Any]] = field(default_factory=list)
    message_count: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    agent: str | None = None
    """The profile of the agent that wrote it (None: the default agent)."""
    agents: list[str] = field(default_factory=list)
    """Every agent the room asked for ("default" for ``[agent]``), in the room's order."""


@dataclass(frozen=True, slots=True)
class FileData:
    type: ClassVar[EventType] = EventType.FILE
    name: str
    mime_type: str
    size: int
    sender: str | None = None
    stream_id: str | None = None
    content_b64: str = ""
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorData:
    """A room left without its agent, for a while or for good (``supervisor._incidents``):
    ``code`` says which (``room_start_failed``, ``room_crashed``, ``room_given_up``),
    ``message`` is a fixed sentence, ``error_type`` the failure's exception type."""

    type: ClassVar[EventType] = EventType.ERROR
    code: str | None = None
    message: str | None = None
    user_id: str | None = None
    room_sid: str | None = None
    agent: str | None = None
    attempt: int = 0
    restarts: int = 0
    error_type: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallData:
    """The model asked for a tool call (its arguments as it wrote them, JSON text)."""

    type: ClassVar[EventType] = EventType.TOOL_CALL
    call_id: str
    name: str
    arguments: str
    source: str | None = None
    speaker: str | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolResultData:
    """A tool call answered: ``content`` is what the model was given."""

    type: ClassVar[EventType] = EventType.TOOL_RESULT
    call_id: str
    name: str
    content: str
    duration_ms: float = 0.0
    attempts: int = 1
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolErrorData:
    """A tool call failed (``code`` says how); ``content`` is the note the model was given."""

    type: ClassVar[EventType] = EventType.TOOL_ERROR
    call_id: str
    name: str
    code: str
    content: str = ""
    duration_ms: float = 0.0
    attempts: int = 1
    user_id: str | None = None


Payload = (
    TurnData
    | ParticipantConnected
    | ParticipantDisconnected
    | AgentJoined
    | SessionData
    | FileData
    | ErrorData
    | ToolCallData
    | ToolResultData
    | ToolErrorData
)

PAYLOADS: dict[EventType, type[Payload]] = {
    cls.type: cls
    for cls in (
        TurnData,
        ParticipantConnected,
        ParticipantDisconnected,
        AgentJoined,
        SessionData,
        FileData,
        ErrorData,
        ToolCallData,
        ToolResultData,
        ToolErrorData,
    )
}
"""The payload class of each event type."""

_KINDS: dict[Any, str] = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    dict: "object",
    list: "array",
    type(None): "null",
}


def payload_json(payload: Payload) -> dict[str, Any]:
    """The payload as an event's ``data`` (the contract's JSON object)."""
    return {f.name: getattr(payload, f.name) for f in fields(payload)}


def json_fields(cls: type[Payload]) -> dict[str, tuple[bool, frozenset[str]]]:
    """Each field of ``cls``: (required, the JSON kinds it may have)."""
    hints = typing.get_type_hints(cls)
    rules: dict[str, tuple[bool, frozenset[str]]] = {}
    for f in fields(cls):
        hint = hints[f.name]
        union = typing.get_origin(hint) in (Union, types.UnionType)
        parts = typing.get_args(hint) if union else (hint,)
        kinds = frozenset(_KINDS[typing.get_origin(p) or p] for p in parts)
        required = f.default is MISSING and f.default_factory is MISSING
        rules[f.name] = (required, kinds)
    return rules
