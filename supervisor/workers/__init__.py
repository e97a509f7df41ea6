"""Room-worker processes: the supervisor spreads rooms over them (DESIGN: Scaling)."""

from __future__ import annotations

from supervisor.workers._metrics_wire import MergedRegistry, snapshot
from supervisor.workers._pool import Worker, WorkerPool
from supervisor.workers._protocol import PROTOCOL_VERSION, ProtocolError, decode, encode
from supervisor.workers._runner import WorkerRoomRunner

__all__ = (
    "PROTOCOL_VERSION",
    "MergedRegistry",
    "ProtocolError",
    "Worker",
    "WorkerPool",
    "WorkerRoomRunner",
    "decode",
    "encode",
    "snapshot",
)
