"""Messages a room actor receives in its mailbox: frozen, slotted, dispatched with ``match``.

The LiveKit SDK's sync callbacks only ``send_nowait`` one of these; all work happens in the
actor's own task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = (
    "ChatReceived",
    "CommandReceived",
    "DataRefused",
    "Disconnected",
    "MetadataChanged",
    "ParticipantJoined",
    "ParticipantLeft",
    "RoomMessage",
    "RoomSpec",
    "StopRequested",
    "StreamOpened",
    "TrackSubscribed",
    "TrackUnsubscribed",
)


@dataclass(frozen=True, slots=True)
class RoomSpec:
    """Everything a room actor needs to join its room; plain data, so it can cross processes.

    Attributes:
        room: the LiveKit room name.
        url: the LiveKit server's WebSocket URL.
        token: an agent access token for that room.
        attempt: 0 for the first start, then the restart count.
    """

    room: str
    url: str
    token: str = field(repr=False)
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    identity: str
    name: str
    metadata: str
    attributes: dict[str, str]
    kind: int
    at: float
    may_set_attributes: bool = False


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    identity: str
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class MetadataChanged:
    """A participant's metadata, name or attributes changed (identity ``""`` = the room's)."""

    identity: str
    metadata: str | None = None
    name: str | None = None
    attributes: dict[str, str] | None = None
    may_set_attributes: bool | None = None


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The agent lost its room for good (room deleted, removed, server shutdown...)."""

    reason: str


@dataclass(frozen=True, slots=True)
class StopRequested:
    reason: str


@dataclass(frozen=True, slots=True)
class TrackSubscribed:
    """A participant's microphone track is ours to listen to (in-process only: holds the track)."""

    identity: str
    track_sid: str
    track: Any


@dataclass(frozen=True, slots=True)
class TrackUnsubscribed:
    track_sid: str


@dataclass(frozen=True, slots=True)
class CommandReceived:
    """A whole command, read from a packet or a text stream, admitted by the quotas."""

    identity: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class ChatReceived:
    """A whole chat message (``lk.chat``), admitted by the quotas."""

    identity: str
    text: str


@dataclass(frozen=True, slots=True)
class DataRefused:
    """Something a participant sent was refused before it was read; tell it why."""

    topic: str
    identity: str
    item_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """A text or byte stream arrived on a topic the actor handles (holds the SDK reader)."""

    topic: str
    identity: str
    reader: Any


RoomMessage = (
    ParticipantJoined
    | ParticipantLeft
    | MetadataChanged
    | Disconnected
    | StopRequested
    | TrackSubscribed
    | TrackUnsubscribed
    | StreamOpened
    | CommandReceived
    | ChatReceived
    | DataRefused
)
