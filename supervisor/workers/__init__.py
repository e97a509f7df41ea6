"""Room hosts as the supervisor runs them: worker processes (or one host in this process), the
pool that keeps them alive, and the one runner the registry supervises rooms through."""

from __future__ import annotations

from supervisor.workers._hosts import RoomWaiter, Worker
from supervisor.workers._pool import WorkerPool
from supervisor.workers._runner import RoomRunner

__all__ = (
    "RoomRunner",
    "RoomWaiter",
    "Worker",
    "WorkerPool",
)
