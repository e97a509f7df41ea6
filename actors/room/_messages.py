"""Messages a room actor receives in its mailbox: frozen, slotted, dispatched with ``match``.

The LiveKit SDK's sync callbacks only ``send_nowait`` one of these; all work happens in the
actor's own task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = (
    "ActorKey",
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


class ActorKey(NamedTuple):
    """One agent in one room: what the registry supervises and a room host runs."""

    room: str
    agent: str = ""
    """Its profile's name (``[agents.NAME]``); "" is the default agent (``[agent]``)."""

    def lease_name(self) -> str:
        """The name of its lease among daemons: the room's for the default agent (as before
        profiles), else the room's with the profile (whose names cannot contain "#")."""
        return self.room if not self.agent else f"{self.room}#agent={self.agent}"

    def task_name(self) -> str:
        return f"room:{self.room}" if not self.agent else f"room:{self.room}:{self.agent}"


@dataclass(frozen=True, slots=True)
class RoomSpec:
    """Everything a room actor needs to join its room; plain data, so it can cross processes.

    Attributes:
        room: the LiveKit room name.
        url: the LiveKit server's WebSocket URL.
        token: an agent access token for that room.
        attempt: 0 for the first start, then the restart count.
        agent: the agent's profile name ("" = the default agent).
    """

    room: str
    url: str
    token: str = field(repr=False)
    attempt: int = 0
    agent: str = ""

    @property
    def key(self) -> ActorKey:
        return ActorKey(self.room, self.agent)


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    identity: str
    name: str
    metadata: str
    attributes: dict[str, str]
    kind: int
    at: float
    may_set_attributes: bool = False
    sid: str = ""  # LiveKit's participant sid: one per connection of an identity


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
