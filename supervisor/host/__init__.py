"""Room hosts: what a process needs to run rooms, and the protocol the supervisor drives it by.

A host runs in each room-worker process (over its pipes) or, with ``[supervisor] workers = 0``,
in the supervisor's own process (over memory): the same code, the same messages.
"""

from __future__ import annotations

from supervisor.host._host import RELOADABLE, RoomHost
from supervisor.host._link import HostLink, MemoryLink, PipeLink, memory_links
from supervisor.host._metrics_wire import MergedRegistry, snapshot
from supervisor.host._protocol import (
    PROTOCOL_VERSION,
    CancelRoom,
    Hello,
    InitFailed,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Ready,
    Reload,
    RoomEnded,
    RoomEndKind,
    RoomStarted,
    Shutdown,
    StartRoom,
    StopRoom,
    decode,
    encode,
)
from supervisor.host._providers import (
    OpenedProviders,
    close_providers,
    open_agent_providers,
    open_providers,
    open_tool_box,
)

__all__ = (
    "PROTOCOL_VERSION",
    "RELOADABLE",
    "CancelRoom",
    "Hello",
    "HostLink",
    "InitFailed",
    "MemoryLink",
    "MergedRegistry",
    "Message",
    "OpenedProviders",
    "Ping",
    "PipeLink",
    "Pong",
    "ProtocolError",
    "Ready",
    "Reload",
    "RoomEndKind",
    "RoomEnded",
    "RoomHost",
    "RoomStarted",
    "Shutdown",
    "StartRoom",
    "StopRoom",
    "close_providers",
    "decode",
    "encode",
    "memory_links",
    "open_agent_providers",
    "open_providers",
    "open_tool_box",
    "snapshot",
)
