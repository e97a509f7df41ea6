"""The room actor: one per LiveKit room."""

from __future__ import annotations

from actors.room._actor import RoomActor, RoomHandle
from actors.room._messages import RoomSpec
from actors.room._ports import Persistence, Providers
from actors.room._rtc import dispose_rtc
from actors.room._settings import (
    DEFAULT_COMMAND_ROLES,
    DataSettings,
    RoomSettings,
    VoiceSettings,
)
from actors.room._state import ConversationHistory, Message, ParticipantState, RoomLifecycle
from actors.room._voice import VoicePipeline

__all__ = (
    "DEFAULT_COMMAND_ROLES",
    "ConversationHistory",
    "DataSettings",
    "Message",
    "ParticipantState",
    "Persistence",
    "Providers",
    "RoomActor",
    "RoomHandle",
    "RoomLifecycle",
    "RoomSettings",
    "RoomSpec",
    "VoicePipeline",
    "VoiceSettings",
    "dispose_rtc",
)
