"""What runs per room and per process: room actors, providers, the persistence actor."""

from __future__ import annotations

from actors._clock import SYSTEM_CLOCK, Clock, SystemClock
from actors._events import Event, EventType, new_event_id
from actors._exceptions import (
    ActorCrashed,
    ActorError,
    ActorStartError,
    BackendRejected,
    ConfigError,
    CoordinationError,
    IllegalTransition,
    OutboxFullError,
    PersistenceError,
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    ProviderTimeoutError,
    ToolError,
    VoiceSupervisorError,
)
from actors._settings import Settings

__all__ = (
    "SYSTEM_CLOCK",
    "ActorCrashed",
    "ActorError",
    "ActorStartError",
    "BackendRejected",
    "Clock",
    "ConfigError",
    "CoordinationError",
    "Event",
    "EventType",
    "IllegalTransition",
    "OutboxFullError",
    "PersistenceError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderStatusError",
    "ProviderTimeoutError",
    "Settings",
    "SystemClock",
    "ToolError",
    "VoiceSupervisorError",
    "new_event_id",
)
