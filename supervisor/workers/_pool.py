"""The supervisor's side of room workers: spawn, place, watch, restart, drain.

``WorkerPool`` keeps ``count`` worker processes alive (each restarted with backoff when it
dies; its rooms end with an error, and the registry restarts them elsewhere with their
history), places each new room on the least-loaded ready worker, pings every worker and kills
one whose pongs stop, and gives the registry a ``make_actor`` that looks like an in-process
actor: ``WorkerRoomRunner``.

A worker that stops reading its stdin (wedged, or stopped with SIGSTOP) fills the pipe, and
every message to it then waits for room in it. So nothing waits on a send without a bound that
matters: pings are sent with a timeout, and the pong deadline is watched by a task of its own,
which kills the worker ``_MISSED_PONGS`` heartbeat periods after its last pong whatever the
senders are doing. The kill breaks the pipe, which ends every send still waiting.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import Process, TaskGroup, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from actors import SYSTEM_CLOCK, Clock
from actors.room import RoomSpec
from supervisor._config import Config, config_to_wire
from supervisor.workers._protocol import (
    Hello,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Ready,
    Reload,
    RoomEnded,
    RoomStarted,
    Shutdown,
    StartRoom,
    decode,
    encode,
)

__all__ = ("RoomWaiter", "Worker", "WorkerPool")

logger = logging.getLogger(__name__)

_MISSED_PONGS = 5
"""Heartbeat periods without a pong after which a worker is killed (the heartbeat timeout)."""
_RESTART_BACKOFF_S = (0.5, 30.0)
_MAX_LINE = 16 * 1024 * 1024
_EXIT_GRACE_S = 2.0


@dataclass(slots=True)
class RoomWaiter:
    """What a runner waits on: the worker's word that its room started, then ended."""

    started: anyio.Event = field(default_factory=anyio.Event)
    ended: anyio.Event = field(default_factory=anyio.Event)
    conversation_id: str = ""
    error: str | None = None
    phase: str = ""


@dataclass(slots=True)
class Worker:
    worker_id: int
    process: Process | None = None
    ready: bool = False
    pid: int = 0
    rooms: dict[str, RoomWaiter] = field(default_factory=dict)
    rss_mb: float = 0.0
    metrics: list[dict[str, Any]] = field(default_factory=list)
    outbox_refusal: str | None = None  # from its last pong: why its outbox refuses events
    last_pong: float = 0.0
    restarts: int = 0
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def send(self, message: Message) -> None:
        if self.process is None or self.process.stdin is None:
            raise anyio.BrokenResourceError("worker is not running")
        async with self._lock:
            await self.process.stdin.send(encode(message))

    def fail_rooms(self, error: str) -> None:
        for waiter in self.rooms.values():
            waiter.error = waiter.error or error
            waiter.phase = waiter.phase or ("run" if waiter.started.is_set() else "start")
            waiter.ended.set()
        self.rooms.clear()


class WorkerPool:
    """Runs ``config.supervisor.worker_count`` room workers.

    Args:
        config: the daemon's configuration (sent to each worker, secrets included, on its pipe).
        clock: time source.
    """

    def __init__(self, config: Config, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self._clock = clock
        count = config.supervisor.worker_count
        self.workers = [Worker(i) for i in range(count)]
        self._tg: TaskGroup | None = None
        self._closing = False
        self._exit_grace_s = _EXIT_GRACE_S
        self._seq = 0
        self._changed = anyio.Event()

    # -- placement ----------------------------------------------------------------------------

    def place(self, room: str) -> Worker | None:
        """The ready worker with the fewest rooms and room to spare, or None."""
        limit = self.config.supervisor.rooms_per_worker
        ready = [w for w in self.workers if w.ready and len(w.rooms) < limit]
        return min(ready, key=lambda w: (len(w.rooms), w.worker_id), default=None)

    def metrics(self) -> Mapping[str, list[dict[str, Any]]]:
        return {str(w.worker_id): w.metrics for w in self.workers if w.metrics}

    @property
    def ready_count(self) -> int:
        return sum(1 for w in self.workers if w.ready)

    async def wait_ready(self, count: int) -> None:
        """Until ``count`` workers are ready (no deadline: the caller sets one)."""
        while self.ready_count < count:
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # -- life cycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep the workers alive until cancelled or ``shutdown()``."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for worker in self.workers:
                tg.start_soon(self._keep, worker, name=f"worker:{worker.worker_id}")
            task_status.started()

    async def shutdown(self, deadline_s: float) -> None:
        """Ask every worker to stop its rooms and exit; kill those still alive at the deadline."""
        self._closing = True
        self._exit_grace_s = deadline_s
        ends = anyio.current_time() + deadline_s
        for worker in self.workers:
            if worker.process is not None and worker.ready:
                # Bounded: a worker that stopped reading its stdin would hold the send for ever.
                with anyio.move_on_after(max(0.0, ends - anyio.current_time())):
                    try:
                        await worker.send(Shutdown(deadline_s))
                        # EOF on its stdin is the worker's cue that nothing more will come (its
                        # reader is a blocking read in a thread, which only EOF ends promptly).
                        if worker.process.stdin is not None:
                            await worker.process.stdin.aclose()
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        pass
        with anyio.move_on_after(deadline_s + 2):
            for worker in self.workers:
                if worker.process is not None:
                    await worker.process.wait()
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                logger.warning(
                    "worker did not exit in time; killing it", extra={"worker": worker.worker_id}
                )
                worker.process.kill()
        if self._tg is not None:
            self._tg.cancel_scope.cancel("pool shut down")

    async def reload(self, config: Config) -> None:
        self.config = config
        for worker in self.workers:
            if worker.ready:
                try:
                    await worker.send(Reload(config_to_wire(config)))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass

    async def start_room(self, worker: Worker, spec: RoomSpec) -> RoomWaiter:
        waiter = RoomWaiter()
        worker.rooms[spec.room] = waiter
        await worker.send(StartRoom(spec.room, spec.url, spec.token, spec.attempt))
        return waiter

    # -- one worker ---------------------------------------------------------------------------

    async def _keep(self, worker: Worker) -> None:
        delay, cap = _RESTART_BACKOFF_S
        while not self._closing:
            started = self._clock.monotonic()
            try:
                await self._run_worker(worker)
            except Exception as exc:  # a worker's failure is contained here; rooms restart
                logger.error(
                    "worker failed", extra={"worker": worker.worker_id, "error": type(exc).__name__}
                )
            worker.ready = False
            worker.outbox_refusal = None  # its next incarnation reports afresh
            worker.fail_rooms("worker exited")
            self._notify()
            if self._closing:
                return
            worker.restarts += 1
            delay = _RESTART_BACKOFF_S[0] if self._clock.monotonic() - started > 60 else delay
            logger.warning(
                "worker exited; restarting", extra={"worker": worker.worker_id, "delay_s": delay}
            )
            await self._clock.sleep(delay)
            delay = min(delay * 2, cap)

    async def _run_worker(self, worker: Worker) -> None:
        command = [sys.executable, "-m", "supervisor.workers"]
        async with await anyio.open_process(command, stderr=None) as process:
            worker.process = process
            try:
                assert process.stdout is not None
                lines = BufferedByteReceiveStream(process.stdout)
                with anyio.fail_after(self.config.supervisor.worker_init_timeout_s):
                    await worker.send(Hello(worker.worker_id, config_to_wire(self.config)))
                    ready = await _next(lines)
                if not isinstance(ready, Ready):
                    raise ProtocolError("a worker's first message must be ready")
                worker.ready, worker.pid = True, ready.pid
                worker.last_pong = self._clock.monotonic()
                logger.info("worker ready", extra={"worker": worker.worker_id, "pid": ready.pid})
                self._notify()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._heartbeat, worker, name=f"worker:{worker.worker_id}:ping")
                    await self._read(worker, lines)
                    tg.cancel_scope.cancel("worker output ended")
            finally:
                worker.ready = False
                with anyio.CancelScope(shield=True):
                    # Its output ended: it is exiting (give it the drain deadline when we
                    # asked it to stop), or it is wedged and gets killed.
                    grace = self._exit_grace_s if self._closing else _EXIT_GRACE_S
                    with anyio.move_on_after(grace):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
                worker.process = None

    async def _read(self, worker: Worker, lines: BufferedByteReceiveStream) -> None:
        while True:
            try:
                message = await _next(lines)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                return
            match message:
                case RoomStarted(room=room, conversation_id=conversation_id):
                    waiter = worker.rooms.get(room)
                    if waiter is not None:
                        waiter.conversation_id = conversation_id
                        waiter.started.set()
                case RoomEnded(room=room, error=error, phase=phase):
                    waiter = worker.rooms.pop(room, None)
                    if waiter is not None:
                        waiter.error, waiter.phase = error, phase
                        waiter.ended.set()
                case Pong(rooms=_, rss_mb=rss_mb, metrics=metrics, outbox_refusal=refusal):
                    worker.rss_mb, worker.metrics = rss_mb, metrics
                    worker.outbox_refusal = refusal
                    worker.last_pong = self._clock.monotonic()
                case _:
                    logger.error(
                        "unexpected message from a worker", extra={"worker": worker.worker_id}
                    )

    async def _heartbeat(self, worker: Worker) -> None:
        """Ping the worker every period, and kill it when its pongs stop.

        The pings and the pong deadline run apart: behind a full pipe a ping waits, and the
        deadline must not wait with it.
        """
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._ping, worker, name=f"worker:{worker.worker_id}:pings")
            await self._watch_pongs(worker)
            tg.cancel_scope.cancel("worker killed")

    async def _ping(self, worker: Worker) -> None:
        period = self.config.supervisor.worker_heartbeat_s
        while True:
            self._seq += 1
            # Bounded by the period so that a stuck ping never holds up the next one. A timed
            # out send leaves its whole line queued in the transport (asyncio writes never
            # split a message), so the protocol's framing survives it.
            with anyio.move_on_after(period):
                try:
                    await worker.send(Ping(self._seq))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    return
            await self._clock.sleep(period)

    async def _watch_pongs(self, worker: Worker) -> None:
        timeout = self.config.supervisor.worker_heartbeat_s * _MISSED_PONGS
        while True:
            silent_s = self._clock.monotonic() - worker.last_pong
            if silent_s >= timeout:
                logger.error(
                    "worker stopped answering; killing it",
                    extra={"worker": worker.worker_id, "pid": worker.pid, "silent_s": silent_s},
                )
                if worker.process is not None and worker.process.returncode is None:
                    worker.process.kill()
                return
            await self._clock.sleep(timeout - silent_s)


async def _next(lines: BufferedByteReceiveStream) -> Message:
    line = await lines.receive_until(b"\n", _MAX_LINE)
    return decode(line)
