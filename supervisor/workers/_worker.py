"""The room-worker process: hosts room actors for the supervisor, nothing else.

Started by the supervisor (spawned, never forked: the rtc FFI is not fork-safe) as
``python -m supervisor.workers``. It reads messages on stdin, answers on a private copy of
stdout (fd 1 itself is pointed at stderr, so a stray print cannot corrupt the protocol), and
runs: its providers (loaded once), its own persistence actor and outbox, and one task per room.
Restart decisions belong to the supervisor; a worker only reports how each room ended.

A room is stopped the two ways the registry stops one in its own process: ``StopRoom`` asks
its actor to finish through its inbox, ``CancelRoom`` cancels it at once (its lease was lost:
another daemon may be answering in the room already). Either way the actor saves its session
and leaves the room within its close timeout, then ``RoomEnded`` is sent.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import anyio
from anyio.abc import TaskGroup, TaskStatus

from actors import ActorStartError
from actors.persistence import EmbeddedStore, PersistenceActor
from actors.room import Providers, RoomActor, RoomHandle, RoomSpec, dispose_rtc
from supervisor._config import Config, parse_config
from supervisor._logging import configure_logging
from supervisor.coordination import GatedLlm, RedisStore, UserLimits
from supervisor.workers._metrics_wire import snapshot
from supervisor.workers._protocol import (
    CancelRoom,
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
    StopRoom,
    decode,
    encode,
)

__all__ = ("worker_main",)

logger = logging.getLogger(__name__)


class _Worker:
    def __init__(self, worker_id: int, config: Config, out: BinaryIO) -> None:
        self.worker_id = worker_id
        self.config = config
        self._out = out
        self._providers: Providers | None = None
        self._limits: UserLimits | None = None
        self._persistence: PersistenceActor | None = None
        self._handles: dict[str, RoomHandle] = {}
        self._scopes: dict[str, anyio.CancelScope] = {}
        """Every room's task scope, from its start to its end (``_handles``: once joined)."""
        self._rooms_tg: TaskGroup | None = None
        self._done = anyio.Event()
        self._room_ended = anyio.Event()

    def send(self, message: Message) -> None:
        # Small writes to a pipe the supervisor drains continuously: blocking is bounded.
        self._out.write(encode(message))
        self._out.flush()

    async def run(self, stdin: anyio.AsyncFile[bytes]) -> None:
        from supervisor._daemon import open_providers  # the daemon's factory, shared

        cfg = self.config
        if cfg.voice.enabled:
            self._providers = await open_providers(cfg)
        persistence_settings = cfg.persistence.model_copy(
            update={"outbox_name": f"worker-{self.worker_id}"}
        )
        redis_store = RedisStore(cfg.redis) if cfg.redis.enabled else None
        if redis_store is not None:
            # Per-user limits hold across daemons and workers: each worker checks them itself.
            limits = UserLimits(cfg.redis, redis_store)
            self._limits = limits if limits.enabled else None
        store = EmbeddedStore(cfg.persistence.store_path)
        persistence = PersistenceActor(persistence_settings, store)
        self._persistence = persistence
        try:
            async with anyio.create_task_group() as outer:
                await outer.start(persistence.run, name="persistence")
                async with anyio.create_task_group() as rooms:
                    self._rooms_tg = rooms
                    rooms.start_soon(self._read, stdin, name="worker:stdin")
                    self.send(Ready(self.worker_id, os.getpid()))
                    await self._done.wait()
                    rooms.cancel_scope.cancel("worker shutting down")
                persistence.close()
                outer.cancel_scope.deadline = anyio.current_time() + cfg.supervisor.drain_timeout_s
        finally:
            if self._providers is not None:
                with anyio.move_on_after(5, shield=True):
                    for provider in (self._providers.stt, self._providers.llm, self._providers.tts):
                        await provider.aclose()
            if redis_store is not None:
                with anyio.move_on_after(2, shield=True):
                    await redis_store.aclose()
            store.close()
            dispose_rtc()

    async def _read(self, stdin: anyio.AsyncFile[bytes]) -> None:
        while line := await stdin.readline():
            try:
                message = decode(line)
            except ProtocolError as exc:
                logger.error("bad message from the supervisor", extra={"error": str(exc)})
                continue
            await self._dispatch(message)
        # stdin closed: the supervisor is gone; stop what we host and exit.
        await self._shutdown(self.config.supervisor.drain_timeout_s)

    async def _dispatch(self, message: Message) -> None:
        match message:
            case StartRoom():
                assert self._rooms_tg is not None
                spec = RoomSpec(message.room, message.url, message.token, message.attempt)
                self._rooms_tg.start_soon(self._room, spec, name=f"room:{spec.room}")
            case StopRoom(room=room, reason=reason):
                handle = self._handles.get(room)
                if handle is not None:
                    handle.request_stop(reason)
                elif room in self._scopes:
                    self._scopes[room].cancel(reason)  # still joining: nothing to finish
            case CancelRoom(room=room, reason=reason):
                if room in self._scopes:
                    self._scopes[room].cancel(reason)
            case Ping(seq=seq):
                refusal = None if self._persistence is None else self._persistence.refusal
                self.send(Pong(seq, len(self._handles), _rss_mb(), snapshot(), refusal))
            case Reload(config=data):
                new = parse_config(data, environ={})
                configure_logging(new.logging)
                self.config = self.config.model_copy(
                    update={
                        "agent": new.agent,
                        "logging": new.logging,
                        "voice": new.voice,
                        "data": new.data,
                    }
                )
            case Shutdown(deadline_s=deadline_s):
                await self._shutdown(deadline_s)
            case _:
                logger.error("unexpected message for a worker", extra={"type": type(message)})

    async def _shutdown(self, deadline_s: float) -> None:
        for handle in list(self._handles.values()):
            handle.request_stop("daemon shutting down")
        for room, scope in list(self._scopes.items()):
            if room not in self._handles:
                scope.cancel("daemon shutting down")
        with anyio.move_on_after(deadline_s):
            while self._scopes:
                await self._room_ended.wait()
        self._done.set()

    async def _room(self, spec: RoomSpec) -> None:
        assert self._persistence is not None
        cfg = self.config
        providers, limits = self._providers, self._limits
        actor: RoomActor | None = None
        if providers is not None and limits is not None:

            def user_of() -> str | None:
                return None if actor is None else actor.session.user_id

            providers = replace(providers, llm=GatedLlm(providers.llm, limits, spec.room, user_of))
        actor = RoomActor(
            spec,
            cfg.agent.room_settings(),
            self._persistence,
            history_limit=cfg.persistence.history_limit,
            providers=providers,
            voice=cfg.voice,
            data=cfg.data,
        )
        phase = "start"
        handle: RoomHandle | None = None
        scope = anyio.CancelScope()
        self._scopes[spec.room] = scope
        try:
            with scope:
                async with anyio.create_task_group() as tg:

                    async def run_actor(*, task_status: TaskStatus[RoomHandle]) -> None:
                        try:
                            await actor.run(task_status=task_status)
                        finally:
                            tg.cancel_scope.cancel("room actor ended")  # ends the refresher

                    handle = await tg.start(run_actor, name=f"room:{spec.room}:actor")
                    self._handles[spec.room] = handle
                    phase = "run"
                    self.send(RoomStarted(spec.room, handle.conversation_id))
                    if limits is not None:
                        tg.start_soon(self._refresh_limits, limits, spec.room)
        except Exception as exc:  # reported to the supervisor, which decides on a restart
            error = type(exc).__name__ if not isinstance(exc, ExceptionGroup) else "ActorCrashed"
            if isinstance(exc, ActorStartError):
                error = "ActorStartError"
            self.send(RoomEnded(spec.room, error, phase))
        else:
            self.send(RoomEnded(spec.room, None if phase == "run" else "cancelled", phase))
        finally:
            if limits is not None:
                with anyio.move_on_after(2, shield=True):
                    await limits.leave(spec.room)
            # Only this run's entries: a StartRoom for the same room may have come meanwhile.
            if self._scopes.get(spec.room) is scope:
                del self._scopes[spec.room]
            if handle is not None and self._handles.get(spec.room) is handle:
                del self._handles[spec.room]
            self._room_ended.set()
            self._room_ended = anyio.Event()

    async def _refresh_limits(self, limits: UserLimits, room: str) -> None:
        # The room keeps its place among its user's rooms (as the daemon's lease keeper does
        # for rooms in its own process); the actor ending cancels this task.
        while True:
            await anyio.sleep(self.config.redis.lease_ttl_s / 3)
            await limits.refresh(room)


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def _main(out: BinaryIO) -> None:
    stdin = anyio.wrap_file(sys.stdin.buffer)
    first = await stdin.readline()
    hello = decode(first)
    if not isinstance(hello, Hello):
        raise ProtocolError("a worker's first message must be hello")
    config = parse_config(hello.config, environ={})
    configure_logging(config.logging)
    await _Worker(hello.worker_id, config, out).run(stdin)


def worker_main() -> int:
    """Entry point of ``python -m supervisor.workers``."""
    # Ctrl-C in a terminal (and a SIGTERM to the process group) reaches every worker too; the
    # supervisor owns the shutdown ladder and tells each worker when to stop its rooms, so the
    # workers leave these signals to it. EOF on stdin (the supervisor gone) also stops them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    protocol_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed to stdout now lands in the log, not in the protocol
    sys.stdout = sys.stderr
    with os.fdopen(protocol_fd, "wb") as out:
        anyio.run(_main, out, backend="asyncio")
    return 0
