"""The daemon: wires config, registry, supervisor, room hosts and HTTP together, and owns
the shutdown ladder.

Rooms always run on room hosts (``supervisor.host``) through one runner: in worker processes,
or with ``[supervisor] workers = 0`` on one host in this process. The daemon itself holds no
room state.

Shutdown (SIGTERM/SIGINT or ``request_stop``): readyz turns 503 and webhooks get 503 → every
room actor is asked to stop and given ``drain_timeout_s`` → the rest are cancelled → the HTTP
server closes (``close_timeout_s``) → the room hosts flush their outboxes and end. The last
rungs share what is left of ``drain_timeout_s``, each getting at least ``close_timeout_s``.
SIGHUP reloads ``[agent]``, ``[agents.*]``, ``[voice]``, ``[data]`` and ``[logging]`` (for new
rooms, on every host); a file that cannot be read or validated is logged ("config reload
rejected") and the running config stays. Signal handlers stay installed until ``run`` returns,
so a second SIGTERM/SIGINT never cuts the ladder short.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
from aiohttp import web
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectSendStream
from livekit import api

from actors import SYSTEM_CLOCK, ActorStartError, Clock, ConfigError
from actors.persistence import EmbeddedStore, PersistenceActor
from actors.providers import merge_health
from actors.room import Providers, RoomSpec
from supervisor._config import Config, ConfigOverrides, load_config
from supervisor._exposure import note_dev_keys
from supervisor._http import build_app
from supervisor._incidents import RoomIncidents
from supervisor._logging import configure_logging
from supervisor._messages import SupervisorMessage
from supervisor._registry import RoomRegistry
from supervisor._supervisor import Supervisor
from supervisor.coordination import Coordinator
from supervisor.host import RELOADABLE, MergedRegistry
from supervisor.playground import Playground
from supervisor.webhook import WebhookEndpoint, WebhookVerifier
from supervisor.workers import RoomRunner, WorkerPool

__all__ = ("Daemon", "DaemonInfo")

logger = logging.getLogger(__name__)

_TOKEN_TTL = datetime.timedelta(hours=6)
"""Lifetime of an agent's room token: longer than any call; a restart mints a new one."""
_CLEANUP_BACKSTOP_S = 5.0
"""The last cleanup (HTTP runner, API client): each is bounded by its own timeouts."""


@dataclass(frozen=True, slots=True)
class DaemonInfo:
    """What a started daemon tells its owner."""

    port: int


class Daemon:
    """One voice-supervisor process.

    Args:
        config: the validated configuration.
        config_path: the file SIGHUP reloads (None: SIGHUP is logged and ignored).
        config_overrides: laid over the file at each reload, as they were at start
            (``run --playground``).
        providers: STT/LLM/TTS for the rooms of a host in this process (``workers = 0``;
            None: built from the config). Worker processes always build their own.
        clock: time source.
    """

    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None = None,
        config_overrides: ConfigOverrides | None = None,
        providers: Providers | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        self.providers = providers
        self._config_path = config_path
        self._config_overrides = config_overrides
        self._clock = clock
        self._stop = anyio.Event()
        self.draining = False
        self.registry: RoomRegistry | None = None
        self.supervisor: Supervisor | None = None
        self.persistence: PersistenceActor | None = None
        """The supervisor process's own persistence actor (outbox ``main``)."""
        self.coordination: Coordinator | None = None
        self.pool: WorkerPool | None = None
        self._drain_ends = 0.0

    def request_stop(self) -> None:
        """Begin the shutdown ladder (what SIGTERM does)."""
        self._stop.set()

    async def run(
        self,
        *,
        handle_signals: bool = False,
        task_status: TaskStatus[DaemonInfo] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until ``request_stop()`` (or a signal when ``handle_signals``)."""
        cfg = self.config
        note_dev_keys(cfg.livekit)
        pool = self.pool = WorkerPool(cfg, providers=self.providers, clock=self._clock)
        store = EmbeddedStore(cfg.persistence.store_path)
        # The supervisor's own outbox ("main"): the playground's lookups, and whatever the
        # supervisor itself records (the rooms' error events); rooms persist on their hosts
        # ("worker-N").
        self.persistence = PersistenceActor(cfg.persistence, store, self._clock)
        incidents = RoomIncidents(self.persistence, clock=self._clock)
        if cfg.redis.enabled:  # leases decide which daemon runs each room (see coordination)
            self.coordination = Coordinator(cfg.redis, clock=self._clock)
        send, receive = anyio.create_memory_object_stream[SupervisorMessage](
            cfg.server.mailbox_size
        )
        lkapi = api.LiveKitAPI(
            cfg.livekit.url, cfg.livekit.api_key, cfg.livekit.api_secret.get_secret_value()
        )
        registry = self.registry = RoomRegistry(
            cfg.supervisor,
            self._room_spec,
            lambda spec: incidents.watch(RoomRunner(pool, spec)),
            clock=self._clock,
            leases=self.coordination,
            on_give_up=incidents.report,
        )
        self.supervisor = Supervisor(
            cfg.supervisor,
            cfg.agent,
            registry,
            receive,
            lkapi,
            agents=cfg.agents,
            clock=self._clock,
        )
        runner = web.AppRunner(self._app(send, lkapi), access_log=None)
        await runner.setup()
        try:
            with _signal_receiver(handle_signals) as signals:
                async with anyio.create_task_group() as outer:
                    await self._start_backing(outer)
                    await self._serve(runner, signals, task_status)
                    await self._close(outer, runner)
                if outer.cancel_scope.cancelled_caught:
                    logger.warning("room hosts did not finish in time")
        finally:
            with anyio.move_on_after(_CLEANUP_BACKSTOP_S, shield=True):
                await runner.cleanup()
                await lkapi.aclose()
            send.close()
            receive.close()
            store.close()
            logger.info("voice-supervisor stopped")

    # -- the ladder's parts -------------------------------------------------------------------

    def _app(
        self, send: MemoryObjectSendStream[SupervisorMessage], lkapi: api.LiveKitAPI
    ) -> web.Application:
        cfg = self.config
        endpoint = WebhookEndpoint(
            WebhookVerifier(cfg.livekit.api_key, cfg.livekit.api_secret.get_secret_value()),
            send,
            dedupe_size=cfg.server.dedupe_size,
            max_body_bytes=cfg.server.max_body_kb * 1024,
            body_timeout_s=cfg.server.body_timeout_s,
            now=self._clock.now,
            accepting=lambda: not self.draining,
        )
        assert self.pool is not None
        metrics = None if self.pool.in_process else MergedRegistry(self.pool.metrics)
        return build_app(endpoint, self._readiness, metrics, self._playground_routes(lkapi))

    async def _start_backing(self, outer: TaskGroup) -> None:
        """What rooms stand on: persistence, coordination, and ready room hosts."""
        assert self.pool is not None
        if self.persistence is not None:
            await outer.start(self.persistence.run, name="persistence")
        if self.coordination is not None:
            await outer.start(self.coordination.run, name="coordination")
        await outer.start(self.pool.run, name="room-hosts")
        with anyio.fail_after(self.config.supervisor.worker_init_timeout_s):
            await self.pool.wait_ready(len(self.pool.workers))

    async def _serve(
        self,
        runner: web.AppRunner,
        signals: AsyncIterator[signal.Signals] | None,
        task_status: TaskStatus[DaemonInfo],
    ) -> None:
        """Take webhooks and run rooms until asked to stop, then drain the rooms."""
        assert self.registry is not None and self.supervisor is not None
        cfg = self.config
        async with anyio.create_task_group() as inner:
            await inner.start(self.registry.run, name="registry")
            await inner.start(self.supervisor.run, name="supervisor")
            if signals is not None:
                inner.start_soon(self._signals, signals, name="signals")
            site = web.TCPSite(runner, cfg.server.host, cfg.server.port)
            await site.start()
            port = site.port
            logger.info("voice-supervisor listening", extra={"port": port})
            task_status.started(DaemonInfo(port=port))
            await self._stop.wait()
            self._drain_ends = anyio.current_time() + cfg.supervisor.drain_timeout_s
            await self._drain(self.registry)
            inner.cancel_scope.cancel("daemon shutting down")

    async def _close(self, outer: TaskGroup, runner: web.AppRunner) -> None:
        """After the drain: stop HTTP, end the room hosts, then persistence and coordination."""
        assert self.pool is not None
        with anyio.move_on_after(self.config.agent.close_timeout_s, shield=True):
            await runner.cleanup()
        with anyio.CancelScope(shield=True):
            await self.pool.shutdown(self._rung_s())
        if self.persistence is not None:
            self.persistence.close()
        if self.coordination is not None:
            self.coordination.close()  # after the rooms: their leases are released by now
        outer.cancel_scope.deadline = anyio.current_time() + self._rung_s()

    def _rung_s(self) -> float:
        """Time for a rung after the drain: what is left of it, at least close_timeout_s."""
        return max(self._drain_ends - anyio.current_time(), self.config.agent.close_timeout_s)

    async def _drain(self, registry: RoomRegistry) -> None:
        self.draining = True
        started = self._clock.monotonic()
        logger.info("draining", extra={"rooms": len(registry.rooms)})
        await registry.drain(self.config.supervisor.drain_timeout_s)
        logger.info("drained", extra={"seconds": round(self._clock.monotonic() - started, 3)})

    async def _signals(self, signals: AsyncIterator[signal.Signals]) -> None:
        async for signum in signals:
            if signum == signal.SIGHUP:
                if self.reload() and self.pool is not None:
                    # Bounded: a stuck worker pipe must not hold up the SIGTERM queued behind.
                    with anyio.move_on_after(self.config.agent.close_timeout_s):
                        await self.pool.reload(self.config)
            elif self._stop.is_set():
                logger.info("signal received; already shutting down", extra={"signal": signum})
            else:
                logger.info("signal received; shutting down", extra={"signal": signum})
                self.request_stop()

    def reload(self) -> bool:
        """Re-read the config file: new rooms and logging use it; a bad file changes nothing.

        Returns:
            True when the new config was taken (the workers then get it too).
        """
        path = self._config_path
        if path is None:
            logger.warning("config reload skipped: the daemon was started without a config file")
            return False
        try:
            new = load_config(path, overrides=self._config_overrides)
        except ConfigError as exc:
            error = str(exc)
        except UnicodeDecodeError as exc:  # load_config reads the file as UTF-8
            error = f"{path}: not UTF-8 text (byte {exc.start})"
        except Exception as exc:  # a reload must never take the running daemon down
            error = f"{path}: {type(exc).__name__}"
        else:
            error = ""
        if error:
            logger.error(
                "config reload rejected; keeping the running config", extra={"error": error}
            )
            return False
        restart_only = sorted(
            name
            for name in type(new).model_fields
            if name not in RELOADABLE and getattr(new, name) != getattr(self.config, name)
        )
        voice, running = new.voice, self.config.voice
        pinned = {"enabled": running.enabled, "providers_factory": running.providers_factory}
        if any(getattr(voice, key) != value for key, value in pinned.items()):
            restart_only.append("voice.enabled/providers_factory")
            voice = voice.model_copy(update=pinned)
        configure_logging(new.logging)
        self.config = self.config.model_copy(
            update={name: getattr(new, name) for name in RELOADABLE} | {"voice": voice}
        )
        if self.supervisor is not None:
            self.supervisor.agent = new.agent
            self.supervisor.agents = new.agents
            self.supervisor.request_reconcile()
        logger.info("config reloaded")
        if restart_only:
            logger.warning(
                "config reload: changed sections take effect only after a restart",
                extra={"sections": restart_only},
            )
        return True

    # -- factories ----------------------------------------------------------------------------

    def _playground_routes(self, lkapi: api.LiveKitAPI) -> list[web.RouteDef]:
        cfg = self.config
        persistence = self.persistence
        if not cfg.playground.enabled or persistence is None:
            return []
        playground = Playground(
            cfg.playground,
            server_host=cfg.server.host,
            server_port=cfg.server.port,
            livekit_url=cfg.livekit.url,
            api_key=cfg.livekit.api_key,
            api_secret=cfg.livekit.api_secret.get_secret_value(),
            rooms=lkapi.room,
            messages=persistence,
            wants_room=lambda room: self.config.agent.wants(room),
            role_attribute=cfg.data.role_attribute,
        )
        logger.warning("playground enabled at /playground: for development only")
        return playground.routes()

    def _room_spec(self, room: str, agent: str, attempt: int) -> RoomSpec:
        cfg = self.config
        try:
            profile = cfg.profile(agent)
        except KeyError:
            raise ActorStartError(
                "the room's agent has no [agents.NAME] profile any more (removed by a reload)"
            ) from None
        token = (
            api.AccessToken(cfg.livekit.api_key, cfg.livekit.api_secret.get_secret_value())
            .with_identity(profile.identity)
            .with_name(profile.name or agent)
            .with_kind("agent")
            .with_grants(
                api.VideoGrants(room_join=True, room=room, agent=True, can_update_own_metadata=True)
            )
            .with_ttl(_TOKEN_TTL)
            .to_jwt()
        )
        return RoomSpec(room=room, url=cfg.livekit.url, token=token, attempt=attempt, agent=agent)

    def _readiness(self) -> tuple[bool, dict[str, object]]:
        registry = self.registry
        rooms = 0 if registry is None else len(registry.rooms)
        waiting = 0 if registry is None else registry.waiting
        details: dict[str, object] = {"rooms": rooms, "waiting": waiting, "draining": self.draining}
        if self.draining:
            details["reason"] = "draining"
        elif waiting:
            details["reason"] = "max_rooms reached; rooms are waiting"
        livekit_ok = True
        if self.supervisor is not None:
            livekit_ok, details["livekit"] = self.supervisor.livekit_health()
            if not livekit_ok and "reason" not in details:
                details["reason"] = (
                    "LiveKit unreachable: the room service has not answered; check [livekit] url"
                )
        redis_ok = True
        if self.coordination is not None:
            redis_ok, details["redis"] = self.coordination.health()
            if not redis_ok and "reason" not in details:
                details["reason"] = "Redis unreachable; no new rooms are taken"
        providers = self._provider_health()
        if providers:  # informational: a chain's fallbacks answer while a provider fails
            details["providers"] = providers
        refusing = self._outbox_refusals()
        if refusing:
            details["outbox"] = refusing
            details.setdefault("reason", next(iter(refusing.values())))
        ready = not self.draining and waiting == 0 and livekit_ok and redis_ok and not refusing
        return ready, details

    def _provider_health(self) -> dict[str, dict[str, object]]:
        """Each provider any room host has used, from the hosts' last pongs."""
        workers = () if self.pool is None else self.pool.workers
        return merge_health(worker.providers for worker in workers)

    def _outbox_refusals(self) -> dict[str, str]:
        """Outboxes that refuse events now (outbox_max_mb reached, disk full), by outbox name,
        as each room host's last pong said (and the playground's, when it has one)."""
        refusing: dict[str, str] = {}
        persistence = self.persistence
        if persistence is not None and persistence.refusal is not None and not self.draining:
            refusing[self.config.persistence.outbox_name] = persistence.refusal
        for worker in () if self.pool is None else self.pool.workers:
            if worker.outbox_refusal is not None:
                refusing[f"worker-{worker.worker_id}"] = worker.outbox_refusal
        return refusing


@contextlib.contextmanager
def _signal_receiver(handle: bool) -> Iterator[AsyncIterator[signal.Signals] | None]:
    # Installed for the whole ladder, not only while the supervisor runs: a second
    # SIGTERM/SIGINT during the drain or the final flush is logged instead of taking its
    # default action (killing the process, or KeyboardInterrupt, mid-flush).
    if not handle:
        yield None
        return
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        yield signals
