"""A room host as the pool sees it (``Worker``), a room's news from it (``RoomWaiter``), and the
pool's end of a worker process's pipes (``ProcessLink``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from actors.room import ActorKey
from supervisor.host import HostLink, Message, RoomEnded, RoomEndKind, decode, encode

__all__ = ("ProcessLink", "RoomWaiter", "Worker")

_MAX_LINE = 16 * 1024 * 1024
"""Longest protocol line a worker may send (a pong with every metric family)."""


@dataclass(slots=True)
class RoomWaiter:
    """A room's news from its host: started (with its conversation), then ended."""

    settled: anyio.Event = field(default_factory=anyio.Event)
    """Set when it started or ended, whichever came first."""
    done: anyio.Event = field(default_factory=anyio.Event)
    conversation_id: str | None = None
    ended: RoomEnded | None = None

    def started(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self.settled.set()

    def finish(self, ended: RoomEnded) -> None:
        if self.ended is None:
            self.ended = ended
        self.settled.set()
        self.done.set()


@dataclass(slots=True)
class Worker:
    """One room host as the pool sees it (a process, or the host in this process)."""

    worker_id: int
    link: HostLink | None = None
    kill: Callable[[], None] | None = None
    ready: bool = False
    running: bool = False
    pid: int = 0
    exit_code: int | None = None
    """How its last process ended (None while one runs, and for a host in this process)."""
    rooms: dict[ActorKey, RoomWaiter] = field(default_factory=dict)
    """Each (room, agent) it runs."""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    outbox_refusal: str | None = None  # from its last pong: why its outbox refuses events
    providers: list[dict[str, Any]] = field(default_factory=list)
    """From its last pong: what it has seen of each provider (``provider_health``)."""
    last_pong: float = 0.0
    memory_warned: bool = False
    retiring: bool = False
    """Over ``worker_memory_limit_mb``: no new rooms; it exits once its last room has ended."""
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def send(self, message: Message) -> None:
        if self.link is None:
            raise anyio.BrokenResourceError("room host is not running")
        async with self._lock:  # one line at a time on a pipe
            await self.link.send(message)

    async def send_quietly(self, message: Message) -> None:
        """``send``, for messages that no longer matter once the host is gone."""
        try:
            await self.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass

    def fail_rooms(self, detail: str) -> None:
        for (room, agent), waiter in self.rooms.items():
            waiter.finish(RoomEnded(room, RoomEndKind.HOST_GONE.value, detail, agent))
        self.rooms.clear()


class ProcessLink:
    """The pool's end of a worker process: lines to its stdin, lines from its stdout."""

    def __init__(self, process: Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._lines = BufferedByteReceiveStream(process.stdout)

    async def receive(self) -> Message:
        return decode(await self._lines.receive_until(b"\n", _MAX_LINE))

    async def send(self, message: Message) -> None:
        await self._stdin.send(encode(message))

    async def aclose(self) -> None:
        await self._stdin.aclose()
