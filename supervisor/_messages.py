"""Messages into the supervisor's mailbox (from the webhook endpoint and the reconcile timer).

Each names the room by ``room`` (its name, what an agent joins) and ``sid`` (the webhook's
``room.sid``: which room of that name, since a room created again under a finished room's name
gets a new sid; "" when the event carried none). ``created_at`` is when LiveKit made the
event (its ``createdAt``, unix seconds; None when absent): LiveKit retries a webhook it could not
deliver, so one may arrive long after its room ended. ``metadata`` is the room's as the event
had it (its ``agents`` list picks the agents; "" when the event carried none).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("ParticipantJoined", "RoomFinished", "RoomStarted", "SupervisorMessage")


@dataclass(frozen=True, slots=True)
class RoomStarted:
    room: str
    sid: str
    received_at: float
    created_at: float | None = None
    metadata: str = ""


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
    created_at: float | None = None
    metadata: str = ""


SupervisorMessage = RoomStarted | RoomFinished | ParticipantJoined
