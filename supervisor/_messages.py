"""Messages into the supervisor's mailbox (from the webhook endpoint and the reconcile timer).

Each names the room by ``room`` (its name, what an agent joins) and ``sid`` (the webhook's
``room.sid``: which room of that name, since a room created again under a finished room's name
gets a new sid; "" when the event carried none).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("ParticipantJoined", "RoomFinished", "RoomStarted", "SupervisorMessage")


@dataclass(frozen=True, slots=True)
class RoomStarted:
    room: str
    sid: str
    received_at: float


@dataclass(frozen=True, slots=True)
class RoomFinished:
    room: str
    sid: str


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    room: str
    sid: str
    identity: str
    received_at: float


SupervisorMessage = RoomStarted | RoomFinished | ParticipantJoined
