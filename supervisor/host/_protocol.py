"""The messages between the supervisor and its room hosts.

Frozen dataclasses, passed as they are to a host in the supervisor's process, and as one JSON
object per line to a worker process (over its stdin, and a private copy of its stdout back),
so a maintainer can read the traffic with ``strace`` or a tee. On the wire every message
carries the protocol version ``v`` and its ``type``; nothing is pickled.

A room's messages name one agent of it: ``room`` and ``agent`` (its profile; "" for the
default agent), since each agent of a room is an actor of its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

__all__ = (
    "PROTOCOL_VERSION",
    "CancelRoom",
    "Hello",
    "InitFailed",
    "Message",
    "Ping",
    "Pong",
    "ProtocolError",
    "Ready",
    "Reload",
    "RoomEndKind",
    "RoomEnded",
    "RoomStarted",
    "Shutdown",
    "StartRoom",
    "StopRoom",
    "decode",
    "encode",
)

PROTOCOL_VERSION = 3


class ProtocolError(ValueError):
    """A line that is not a message of this protocol version."""


@dataclass(frozen=True, slots=True)
class Hello:
    """Supervisor → worker, first: who you are and the configuration (secrets included)."""

    worker_id: int
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ready:
    """Worker → supervisor: providers loaded, persistence open, accepting rooms."""

    worker_id: int
    pid: int


@dataclass(frozen=True, slots=True)
class InitFailed:
    """Worker → supervisor, instead of ``Ready``: the configuration cannot work (a provider's
    key is missing, say); ``error`` names the setting. A restart would fail the same way."""

    worker_id: int
    error: str


@dataclass(frozen=True, slots=True)
class StartRoom:
    room: str
    url: str
    token: str = field(repr=False)
    attempt: int
    agent: str = ""


@dataclass(frozen=True, slots=True)
class StopRoom:
    """Ask the room's actor to finish through its inbox (the current reply ends first)."""

    room: str
    reason: str
    agent: str = ""


@dataclass(frozen=True, slots=True)
class CancelRoom:
    """Cancel the room's actor at once, as the registry cancels one in its own process (a lost
    lease, the drain deadline); it still saves its session and leaves within its close
    timeout. The worker answers with ``RoomEnded`` once it has left."""

    room: str
    reason: str
    agent: str = ""


@dataclass(frozen=True, slots=True)
class RoomStarted:
    room: str
    conversation_id: str
    agent: str = ""


class RoomEndKind(StrEnum):
    """How a room's actor ended, as its host saw it (what the registry's restart policy reads)."""

    CLEAN = "clean"
    """It finished: stopped, ended by the room, or by a command."""
    CANCELLED = "cancelled"
    """The supervisor cancelled it (``CancelRoom``, or a stop before it had joined)."""
    START_FAILED = "start_failed"
    """It could not join its room."""
    CRASHED = "crashed"
    """It failed after joining."""
    HOST_GONE = "host_gone"
    """Its host died or stopped answering (set by the supervisor's side, never sent)."""


@dataclass(frozen=True, slots=True)
class RoomEnded:
    """The room's actor finished; ``detail`` is the type of a failure's cause (no user data)."""

    room: str
    kind: str = RoomEndKind.CLEAN.value
    detail: str = ""
    agent: str = ""

    def __post_init__(self) -> None:
        if self.kind not in {k.value for k in RoomEndKind}:
            raise TypeError(f"unknown room end kind {self.kind!r}")


@dataclass(frozen=True, slots=True)
class Reload:
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ping:
    seq: int


@dataclass(frozen=True, slots=True)
class Pong:
    """Heartbeat answer with the host's memory, a snapshot of its metrics (empty for a host in
    the supervisor's process), why its outbox refuses events (``PersistenceActor.refusal``:
    outbox_max_mb reached, disk full), if it does, and what it has seen of each provider
    (``actors.providers.provider_health``): the supervisor's readyz reports both."""

    seq: int
    rss_mb: float
    metrics: list[dict[str, Any]] = field(default_factory=list)
    outbox_refusal: str | None = None
    providers: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Stop every room (sessions saved), flush persistence, exit within ``deadline_s``."""

    deadline_s: float


Message = (
    Hello
    | Ready
    | InitFailed
    | StartRoom
    | StopRoom
    | CancelRoom
    | RoomStarted
    | RoomEnded
    | Reload
    | Ping
    | Pong
    | Shutdown
)

_TYPES: dict[str, type[Any]] = {
    "hello": Hello,
    "ready": Ready,
    "init_failed": InitFailed,
    "start_room": StartRoom,
    "stop_room": StopRoom,
    "cancel_room": CancelRoom,
    "room_started": RoomStarted,
    "room_ended": RoomEnded,
    "reload": Reload,
    "ping": Ping,
    "pong": Pong,
    "shutdown": Shutdown,
}
_NAMES = {cls: name for name, cls in _TYPES.items()}


def encode(message: Message) -> bytes:
    """One line of JSON."""
    body = {"v": PROTOCOL_VERSION, "type": _NAMES[type(message)], **asdict(message)}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> Message:
    """Parse one line.

    Raises:
        ProtocolError: not JSON, another protocol version, an unknown type or wrong fields.
    """
    try:
        body = json.loads(line)
    except ValueError:
        raise ProtocolError("worker protocol line is not JSON") from None
    if not isinstance(body, dict) or body.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"worker protocol version mismatch (want v{PROTOCOL_VERSION})")
    cls = _TYPES.get(str(body.get("type")))
    if cls is None:
        raise ProtocolError(f"unknown worker message type {body.get('type')!r}")
    names = {f.name for f in fields(cls)}
    try:
        message: Message = cls(**{k: v for k, v in body.items() if k in names})
    except TypeError as exc:
        raise ProtocolError(f"malformed {body['type']} message: {exc}") from None
    return message
