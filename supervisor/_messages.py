"""Messages into the supervisor's mailbox (from the webhook endpoint and the reconcile timer)."""

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
