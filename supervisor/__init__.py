"""voice-supervisor's process: config, webhook endpoint, registry, supervisor, health."""

from __future__ import annotations

from supervisor._config import (
    AgentSettings,
    Config,
    LiveKitSettings,
    LoggingSettings,
    ServerSettings,
    SupervisorSettings,
    load_config,
    parse_config,
)
from supervisor._daemon import Daemon, DaemonInfo
from supervisor._registry import RoomRegistry
from supervisor._supervisor import Supervisor

__all__ = (
    "AgentSettings",
    "Config",
    "Daemon",
    "DaemonInfo",
    "LiveKitSettings",
    "LoggingSettings",
    "RoomRegistry",
    "ServerSettings",
    "Supervisor",
    "SupervisorSettings",
    "load_config",
    "parse_config",
)
