"""The room actor: one per LiveKit room."""

from __future__ import annotations

from actors.room._actor import RoomActor, RoomHandle
from actors.room._messages import ActorKey, RoomSpec
from actors.room._ports import Persistence, Providers
from actors.room._profiles import (
    DEFAULT_AGENT,
    PROFILE_NAME,
    AgentProfile,
    Speaks,
    room_agents,
)
from actors.room._rtc import dispose_rtc
from actors.room._settings import (
    DEFAULT_COMMAND_ROLES,
    DataSettings,
    RoomSettings,
    VoiceSettings,
)
from actors.room._state import ConversationHistory, Message, ParticipantState, RoomLifecycle
from actors.room._team import Floor, LocalFloor, Relay, Seat, Team, TeamNews
from actors.room._voice import VoicePipeline

__all__ = (
    "DEFAULT_AGENT",
    "DEFAULT_COMMAND_ROLES",
    "PROFILE_NAME",
    "ActorKey",
    "AgentProfile",
    "ConversationHistory",
    "DataSettings",
    "Floor",
    "LocalFloor",
    "Message",
    "ParticipantState",
    "Persistence",
    "Providers",
    "Relay",
    "RoomActor",
    "RoomHandle",
    "RoomLifecycle",
    "RoomSettings",
    "RoomSpec",
    "Seat",
    "Speaks",
    "Team",
    "TeamNews",
    "VoicePipeline",
    "VoiceSettings",
    "dispose_rtc",
    "room_agents",
)
