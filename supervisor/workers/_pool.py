"""The supervisor's side of room hosts: start, place, watch, restart, drain.

``WorkerPool`` keeps its room hosts alive: ``[supervisor] workers`` worker processes, or with
``workers = 0`` one host in this process (the same ``RoomHost``, over memory instead of pipes).
Each host is restarted with backoff when it ends unasked (its rooms end as ``HOST_GONE``, and
the registry restarts them elsewhere with their history). The pool places each new room on the
least-loaded ready host, pings every host and kills one whose pongs stop, warns about a host
whose memory passes ``worker_memory_warn_mb``, and retires a worker past
``worker_memory_limit_mb``: it gets no new rooms, and once its last room has ended it exits and
starts afresh. (The rtc SDK keeps native memory of every room a process has joined, ~0.2–1 MB
each, however the room ended; a fresh process is the only way to give it back, and retiring
one between calls costs nobody a dropped call.)

A worker that stops reading its stdin (wedged, or stopped with SIGSTOP) fills the pipe, and
every message to it then waits for room in it. So nothing waits on a send without a bound that
matters: pings are sent with a timeout, and the pong deadline is watched by a task of its own,
which kills the host ``_MISSED_PONGS`` heartbeat periods after its last pong whatever the
senders are doing. The kill breaks the pipe, which ends every send still waiting.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from actors import SYSTEM_CLOCK, Clock, ConfigError
from actors.room import ActorKey, Providers, RoomSpec
from supervisor._config import Config, config_to_wire
from supervisor.host import (
    Hello,
    HostLink,
    InitFailed,
    Ping,
    Pong,
    ProtocolError,
    Ready,
    Reload,
    RoomEnded,
    RoomHost,
    RoomStarted,
    Shutdown,
    StartRoom,
    memory_links,
)
from supervisor.workers._hosts import ProcessLink, RoomWaiter, Worker

__all__ = ("WorkerPool",)

logger = logging.getLogger(__name__)

_MISSED_PONGS = 5
"""Heartbeat periods without a pong after which a host is killed (the heartbeat timeout)."""
_RESTART_BACKOFF_S = (0.5, 30.0)
"""First and longest delay before a host that ended unasked is started again."""
_STEADY_S = 60.0
"""A host that ran this long before it ended restarts with the first delay again."""
_EXIT_GRACE_S = 2.0
"""How long a host whose output ended gets to exit before it is killed."""


class WorkerPool:
    """Runs the room hosts of the daemon.

    Args:
        config: the daemon's configuration (sent to each worker, secrets included, on its pipe).
        providers: STT/LLM/TTS for a host in this process (None: it opens them from the config);
            worker processes always open their own.
        clock: time source.
    """

    def __init__(
        self, config: Config, *, providers: Providers | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.config = config
        self._providers = providers
        self._clock = clock
        count = config.supervisor.worker_count
        self.in_process = count == 0
        self.workers = [Worker(i) for i in range(max(count, 1))]
        self._tg: TaskGroup | None = None
        self._closing = False
        self._exit_grace_s = _EXIT_GRACE_S
        self._seq = 0
        self._changed = anyio.Event()
        self.config_error: str | None = None
        """Why a host could not start for a configuration reason (it is not restarted)."""

    # -- placement ----------------------------------------------------------------------------

    def place(self, room: str) -> Worker | None:
        """The ready host with the fewest rooms and room to spare, or None. A room's agents
        go to the host that already runs one of them, while it has room: agents in one
        process share their floor and history in memory."""
        limit = self.config.supervisor.rooms_per_worker
        ready = [w for w in self.workers if w.ready and not w.retiring and len(w.rooms) < limit]
        together = [w for w in ready if any(key.room == room for key in w.rooms)]
        return min(together or ready, key=lambda w: (len(w.rooms), w.worker_id), default=None)

    def metrics(self) -> Mapping[str, list[dict[str, Any]]]:
        return {str(w.worker_id): w.metrics for w in self.workers if w.metrics}

    @property
    def ready_count(self) -> int:
        return sum(1 for w in self.workers if w.ready)

    async def wait_ready(self, count: int) -> None:
        """Until ``count`` hosts are ready (no deadline: the caller sets one).

        Raises:
            ConfigError: a host reported that the configuration cannot work.
        """
        while self.ready_count < count:
            if self.config_error is not None:
                raise ConfigError(self.config_error)
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # -- life cycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep the hosts alive until cancelled or ``shutdown()``."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for worker in self.workers:
                tg.start_soon(self._keep, worker, name=f"worker:{worker.worker_id}")
            task_status.started()

    async def shutdown(self, deadline_s: float) -> None:
        """Ask every host to stop its rooms and end; kill those still running at the deadline."""
        self._closing = True
        self._exit_grace_s = deadline_s
        ends = anyio.current_time() + deadline_s
        for worker in self.workers:
            if worker.link is not None and worker.ready:
                # Bounded: a worker that stopped reading its stdin would hold the send for ever.
                with anyio.move_on_after(max(0.0, ends - anyio.current_time())):
                    try:
                        await worker.send(Shutdown(deadline_s))
                        # The end of its input is a host's cue that nothing more will come (a
                        # worker's reader is a blocking read in a thread, which only EOF ends).
                        await worker.link.aclose()
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        pass
        with anyio.move_on_after(deadline_s + _EXIT_GRACE_S):
            while any(w.running for w in self.workers):
                await self._changed.wait()
        for worker in self.workers:
            if worker.running and worker.kill is not None:
                logger.warning(
                    "room host did not end in time; killing it", extra={"worker": worker.worker_id}
                )
                worker.kill()
        if self._tg is not None:
            self._tg.cancel_scope.cancel("pool shut down")

    async def reload(self, config: Config) -> None:
        self.config = config
        for worker in self.workers:
            if worker.ready:
                await worker.send_quietly(Reload(config_to_wire(config)))

    async def start_room(self, worker: Worker, spec: RoomSpec) -> RoomWaiter:
        waiter = RoomWaiter()
        worker.rooms[spec.key] = waiter
        await worker.send(StartRoom(spec.room, spec.url, spec.token, spec.attempt, spec.agent))
        return waiter

    # -- one host -----------------------------------------------------------------------------

    async def _keep(self, worker: Worker) -> None:
        delay, cap = _RESTART_BACKOFF_S
        while not self._closing:
            started = self._clock.monotonic()
            worker.running = True
            try:
                if self.in_process:
                    await self._run_local(worker)
                else:
                    await self._run_process(worker)
            except Exception as exc:  # a host's failure is contained here; rooms restart
                config_error = _config_error(exc)
                if config_error is not None:
                    # It would fail the same way at every restart: stop, and let the daemon
                    # exit with the reason (a restart loop would hide it).
                    self.config_error = str(config_error)
                    logger.error(
                        "room host cannot start: configuration error; not restarting it",
                        extra={"worker": worker.worker_id, "error": self.config_error},
                    )
                    return
                logger.error(
                    "room host failed",
                    extra={"worker": worker.worker_id, "error": type(exc).__name__},
                )
            finally:
                worker.running = worker.ready = False
                worker.link = worker.kill = None
                worker.outbox_refusal = None  # its next incarnation reports afresh
                worker.providers = []
                worker.memory_warned = worker.retiring = False
                worker.fail_rooms("room host exited")
                self._notify()
            if self._closing:
                return
            if self._clock.monotonic() - started > _STEADY_S:
                delay = _RESTART_BACKOFF_S[0]
            logger.warning(
                "room host ended; restarting", extra={"worker": worker.worker_id, "delay_s": delay}
            )
            await self._clock.sleep(delay)
            delay = min(delay * 2, cap)

    async def _run_process(self, worker: Worker) -> None:
        command = [sys.executable, "-m", "supervisor.workers"]
        async with await anyio.open_process(command, stderr=None) as process:
            worker.exit_code = None
            link = ProcessLink(process)
            worker.kill = process.kill
            try:
                with anyio.fail_after(self.config.supervisor.worker_init_timeout_s):
                    await link.send(Hello(worker.worker_id, config_to_wire(self.config)))
                await self._serve(worker, link)
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
                worker.exit_code = process.returncode

    async def _run_local(self, worker: Worker) -> None:
        host_end, pool_end = memory_links()
        host = RoomHost(
            worker.worker_id,
            self.config,
            providers=self._providers,
            report_metrics=False,
            clock=self._clock,
        )
        async with anyio.create_task_group() as tg:
            scope = tg.cancel_scope
            worker.kill = lambda: scope.cancel("room host stopped answering")
            tg.start_soon(host.run, host_end, name="room-host")
            try:
                await self._serve(worker, pool_end)
            finally:
                await pool_end.aclose()

    async def _serve(self, worker: Worker, link: HostLink) -> None:
        with anyio.fail_after(self.config.supervisor.worker_init_timeout_s):
            ready = await link.receive()
        if isinstance(ready, InitFailed):
            raise ConfigError(ready.error)
        if not isinstance(ready, Ready):
            raise ProtocolError("a room host's first message must be ready")
        worker.link, worker.ready, worker.pid = link, True, ready.pid
        worker.last_pong = self._clock.monotonic()
        logger.info("room host ready", extra={"worker": worker.worker_id, "pid": ready.pid})
        self._notify()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._heartbeat, worker, name=f"worker:{worker.worker_id}:ping")
            await self._read(worker, link)
            tg.cancel_scope.cancel("room host output ended")

    async def _read(self, worker: Worker, link: HostLink) -> None:
        while True:
            try:
                message = await link.receive()
            except (
                anyio.EndOfStream,
                anyio.IncompleteRead,
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
            ):
                return
            except ProtocolError as exc:
                logger.error(
                    "bad message from a room host",
                    extra={"worker": worker.worker_id, "error": str(exc)},
                )
                continue
            match message:
                case RoomStarted(room=room, conversation_id=conversation_id, agent=agent):
                    waiter = worker.rooms.get(ActorKey(room, agent))
                    if waiter is not None:
                        waiter.started(conversation_id)
                case RoomEnded(room=room, agent=agent):
                    waiter = worker.rooms.pop(ActorKey(room, agent), None)
                    if waiter is not None:
                        waiter.finish(message)
                    if worker.retiring and not worker.rooms:
                        await self._retire(worker)
                case Pong(rss_mb=rss_mb, metrics=metrics, outbox_refusal=refusal):
                    worker.metrics, worker.outbox_refusal = metrics, refusal
                    worker.providers = message.providers
                    worker.last_pong = self._clock.monotonic()
                    await self._check_memory(worker, rss_mb)
                case _:
                    logger.error(
                        "unexpected message from a room host", extra={"worker": worker.worker_id}
                    )

    async def _check_memory(self, worker: Worker, rss_mb: float) -> None:
        settings = self.config.supervisor
        extra = {"worker": worker.worker_id, "rss_mb": round(rss_mb, 1), "rooms": len(worker.rooms)}
        limit = settings.worker_memory_limit_mb
        if (
            limit is not None
            and rss_mb > limit
            and not (self.in_process or self._closing or worker.retiring)
        ):
            logger.warning(
                "room worker over worker_memory_limit_mb; retiring it once its rooms end",
                extra=extra,
            )
            worker.retiring = True
            self._notify()
            if not worker.rooms:
                await self._retire(worker)
            return
        warn = settings.worker_memory_warn_mb
        if warn is not None and rss_mb > warn and not worker.memory_warned:
            worker.memory_warned = True
            logger.warning("room host over worker_memory_warn_mb", extra=extra)

    async def _retire(self, worker: Worker) -> None:
        """A retiring worker's last room ended: it flushes and exits; ``_keep`` starts anew."""
        worker.ready = False
        # Bounded like a ping: a wedged worker is the heartbeat's to kill.
        with anyio.move_on_after(self.config.supervisor.worker_heartbeat_s):
            await worker.send_quietly(Shutdown(self.config.supervisor.drain_timeout_s))
            if worker.link is not None:
                await worker.link.aclose()

    async def _heartbeat(self, worker: Worker) -> None:
        """Ping the host every period, and kill it when its pongs stop.

        The pings and the pong deadline run apart: behind a full pipe a ping waits, and the
        deadline must not wait with it.
        """
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._ping, worker, name=f"worker:{worker.worker_id}:pings")
            await self._watch_pongs(worker)
            tg.cancel_scope.cancel("room host killed")

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
                    "room host stopped answering; killing it",
                    extra={"worker": worker.worker_id, "pid": worker.pid, "silent_s": silent_s},
                )
                if worker.kill is not None:
                    worker.kill()
                return
            await self._clock.sleep(timeout - silent_s)


def _config_error(exc: BaseException) -> ConfigError | None:
    """The ConfigError ``exc`` is, or is alone inside task-group groups of."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, ConfigError) else None
