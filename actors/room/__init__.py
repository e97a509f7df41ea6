"""The room actor: one per LiveKit room."""

from __future__ import annotations

from actors.room._actor import RoomActor, RoomHandle
from actors.room._messages import RoomSpec
from actors.room._ports import Persistence
from actors.room._settings import RoomSettings
from actors.room._state import ConversationHistory, Message, ParticipantState, RoomLifecycle

__all__ = (
    "ConversationHistory",
    "Message",
    "ParticipantState",
    "Persistence",
    "RoomActor",
    "RoomHandle",
    "RoomLifecycle",
    "RoomSettings",
    "RoomSpec",
)
