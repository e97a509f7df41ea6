"""The daemon: wires config, persistence, registry, supervisor and HTTP together, and owns
the shutdown ladder.

Shutdown (SIGTERM/SIGINT or ``request_stop``): readyz turns 503 and webhooks get 503 → every
room actor is asked to stop and given ``drain_timeout_s`` → the rest are cancelled → the HTTP
server closes (``close_timeout_s``) → the room workers flush and exit → the persistence actor
stores what it holds. The last two share what is left of ``drain_timeout_s``, each getting at
least ``close_timeout_s``: at worst ``drain_timeout_s + 3 × close_timeout_s`` (+ 2 s of
grace for the workers' exit) in all.
SIGHUP reloads ``[agent]``, ``[voice]``, ``[data]`` and ``[logging]`` (for new rooms, in every
worker too); a file that cannot be read or validated is logged ("config reload rejected") and
the running config stays. Signal handlers stay installed until ``run`` returns, so a second
SIGTERM/SIGINT never cuts the ladder short.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
from aiohttp import web
from anyio.abc import TaskStatus
from livekit import api

from actors import SYSTEM_CLOCK, Clock, ConfigError
from actors.persistence import EmbeddedStore, PersistenceActor
from actors.providers import build_llm, build_stt, build_tts
from actors.room import Providers, RoomActor, RoomSpec
from supervisor._config import Config, ConfigOverrides, load_config
from supervisor._exposure import note_dev_keys
from supervisor._http import build_app
from supervisor._logging import configure_logging
from supervisor._messages import SupervisorMessage
from supervisor._registry import ActorRunner, RoomRegistry
from supervisor._supervisor import Supervisor
from supervisor.coordination import Coordinator
from supervisor.playground import Playground
from supervisor.webhook import WebhookEndpoint, WebhookVerifier
from supervisor.workers import MergedRegistry, WorkerPool, WorkerRoomRunner

__all__ = ("Daemon", "DaemonInfo")

logger = logging.getLogger(__name__)

_TOKEN_TTL = datetime.timedelta(hours=6)
_RELOADABLE = frozenset({"agent", "logging", "voice", "data"})
"""Config sections SIGHUP applies (to new rooms, here and in every worker); the others, and
``[voice] enabled`` and ``providers_factory`` (providers are opened at start), need a restart."""


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
        providers: STT/LLM/TTS for every room (None: built from the config).
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
        self.coordination: Coordinator | None = None
        self.pool: WorkerPool | None = None

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
        # With workers, rooms (and their providers) live in worker processes.
        pool = WorkerPool(cfg, clock=self._clock) if cfg.supervisor.worker_count else None
        self.pool = pool
        owns_providers = self.providers is None and cfg.voice.enabled and pool is None
        if owns_providers:
            self.providers = await open_providers(cfg)
        store = EmbeddedStore(cfg.persistence.store_path)
        persistence = PersistenceActor(cfg.persistence, store, self._clock)
        self.persistence = persistence
        send, receive = anyio.create_memory_object_stream[SupervisorMessage](
            cfg.server.mailbox_size
        )
        lkapi = api.LiveKitAPI(
            cfg.livekit.url, cfg.livekit.api_key, cfg.livekit.api_secret.get_secret_value()
        )
        # With [redis] url: leases decide which daemon runs each room (see coordination).
        coordination = Coordinator(cfg.redis, clock=self._clock) if cfg.redis.enabled else None
        self.coordination = coordination
        registry = RoomRegistry(
            cfg.supervisor,
            self._room_spec,
            self._room_actor,
            clock=self._clock,
            leases=coordination,
        )
        self.registry = registry
        supervisor = Supervisor(
            cfg.supervisor, cfg.agent, registry, receive, lkapi, clock=self._clock
        )
        self.supervisor = supervisor
        endpoint = WebhookEndpoint(
            WebhookVerifier(cfg.livekit.api_key, cfg.livekit.api_secret.get_secret_value()),
            send,
            dedupe_size=cfg.server.dedupe_size,
            max_body_bytes=cfg.server.max_body_kb * 1024,
            body_timeout_s=cfg.server.body_timeout_s,
            now=self._clock.now,
            accepting=lambda: not self.draining,
        )
        metrics = None if pool is None else MergedRegistry(pool.metrics)
        app = build_app(
            endpoint, self._readiness, metrics, self._playground_routes(lkapi, persistence)
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        # Installed for the whole ladder, not only while the supervisor runs: a second
        # SIGTERM/SIGINT during the drain or the final flush is logged instead of taking its
        # default action (killing the process, or KeyboardInterrupt, mid-flush).
        signal_scope = contextlib.ExitStack()
        signals = (
            signal_scope.enter_context(
                anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
            )
            if handle_signals
            else None
        )
        drain_ends = 0.0

        def rung_s() -> float:
            """Time for a rung after the drain: what is left of it, at least close_timeout_s."""
            return max(drain_ends - anyio.current_time(), cfg.agent.close_timeout_s)

        try:
            async with anyio.create_task_group() as outer:
                await outer.start(persistence.run, name="persistence")
                if coordination is not None:
                    await outer.start(coordination.run, name="coordination")
                if pool is not None:
                    await outer.start(pool.run, name="workers")
                    with anyio.fail_after(cfg.supervisor.worker_init_timeout_s):
                        await pool.wait_ready(len(pool.workers))
                async with anyio.create_task_group() as inner:
                    await inner.start(registry.run, name="registry")
                    await inner.start(supervisor.run, name="supervisor")
                    if signals is not None:
                        inner.start_soon(self._signals, signals, name="signals")
                    site = web.TCPSite(runner, cfg.server.host, cfg.server.port)
                    await site.start()
                    port = _bound_port(site, cfg.server.port)
                    logger.info("voice-supervisor listening", extra={"port": port})
                    task_status.started(DaemonInfo(port=port))
                    await self._stop.wait()
                    drain_ends = anyio.current_time() + cfg.supervisor.drain_timeout_s
                    await self._drain(registry)
                    inner.cancel_scope.cancel("daemon shutting down")
                with anyio.move_on_after(cfg.agent.close_timeout_s, shield=True):
                    await runner.cleanup()
                if pool is not None:
                    with anyio.CancelScope(shield=True):
                        await pool.shutdown(rung_s())
                persistence.close()
                if coordination is not None:
                    coordination.close()  # after the rooms: their leases are released by now
                # The outbox gets its own deadline: what it cannot store stays queued on disk
                # (with the durable outbox) or is reported lost here.
                outer.cancel_scope.deadline = anyio.current_time() + rung_s()
            if outer.cancel_scope.cancelled_caught:
                logger.warning(
                    "persistence did not finish in time", extra={"backlog": persistence.backlog}
                )
        finally:
            with anyio.move_on_after(5, shield=True):
                await runner.cleanup()
                await lkapi.aclose()
                if owns_providers and self.providers is not None:
                    for provider in (self.providers.stt, self.providers.llm, self.providers.tts):
                        await provider.aclose()
            send.close()
            receive.close()
            store.close()
            signal_scope.close()
            logger.info("voice-supervisor stopped")

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
            if name not in _RELOADABLE and getattr(new, name) != getattr(self.config, name)
        )
        voice, running = new.voice, self.config.voice
        pinned = {"enabled": running.enabled, "providers_factory": running.providers_factory}
        if any(getattr(voice, key) != value for key, value in pinned.items()):
            restart_only.append("voice.enabled/providers_factory")
            voice = voice.model_copy(update=pinned)
        configure_logging(new.logging)
        self.config = self.config.model_copy(
            update={"agent": new.agent, "logging": new.logging, "voice": voice, "data": new.data}
        )
        if self.supervisor is not None:
            self.supervisor.agent = new.agent
            self.supervisor.request_reconcile()
        logger.info("config reloaded")
        if restart_only:
            logger.warning(
                "config reload: changed sections take effect only after a restart",
                extra={"sections": restart_only},
            )
        return True

    # -- factories ----------------------------------------------------------------------------

    def _playground_routes(
        self, lkapi: api.LiveKitAPI, persistence: PersistenceActor
    ) -> list[web.RouteDef]:
        cfg = self.config
        if not cfg.playground.enabled:
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

    def _room_spec(self, room: str, attempt: int) -> RoomSpec:
        cfg = self.config
        token = (
            api.AccessToken(cfg.livekit.api_key, cfg.livekit.api_secret.get_secret_value())
            .with_identity(cfg.agent.identity)
            .with_name(cfg.agent.name)
            .with_kind("agent")
            .with_grants(
                api.VideoGrants(room_join=True, room=room, agent=True, can_update_own_metadata=True)
            )
            .with_ttl(_TOKEN_TTL)
            .to_jwt()
        )
        return RoomSpec(room=room, url=cfg.livekit.url, token=token, attempt=attempt)

    def _room_actor(self, spec: RoomSpec) -> ActorRunner:
        if self.pool is not None:
            return WorkerRoomRunner(self.pool, spec)
        assert self.persistence is not None
        providers = self.providers
        actor: RoomActor | None = None
        if providers is not None and self.coordination is not None:
            # Per-user limits: the room's model answers only within them (see coordination).
            def user_of() -> str | None:
                return None if actor is None else actor.session.user_id

            llm = self.coordination.gate_llm(spec.room, providers.llm, user_of)
            providers = replace(providers, llm=llm)
        actor = RoomActor(
            spec,
            self.config.agent.room_settings(),
            self.persistence,
            history_limit=self.config.persistence.history_limit,
            providers=providers,
            voice=self.config.voice,
            data=self.config.data,
            clock=self._clock,
        )
        return actor

    def _readiness(self) -> tuple[bool, dict[str, object]]:
        registry = self.registry
        rooms = 0 if registry is None else len(registry.rooms)
        waiting = 0 if registry is None else registry.waiting
        details: dict[str, object] = {"rooms": rooms, "waiting": waiting, "draining": self.draining}
        if self.draining:
            details["reason"] = "draining"
        elif waiting:
            details["reason"] = "max_rooms reached; rooms are waiting"
        redis_ok = True
        if self.coordination is not None:
            redis_ok, details["redis"] = self.coordination.health()
            if not redis_ok and "reason" not in details:
                details["reason"] = "Redis unreachable; no new rooms are taken"
        refusing = self._outbox_refusals()
        if refusing:
            details["outbox"] = refusing
            details.setdefault("reason", next(iter(refusing.values())))
        return (not self.draining and waiting == 0 and redis_ok and not refusing), details

    def _outbox_refusals(self) -> dict[str, str]:
        """Outboxes that refuse events now (outbox_max_mb reached, disk full), by outbox name:
        this process's, and each worker's as its last pong said."""
        refusing: dict[str, str] = {}
        persistence = self.persistence
        if persistence is not None and persistence.refusal is not None and not self.draining:
            refusing[self.config.persistence.outbox_name] = persistence.refusal
        for worker in () if self.pool is None else self.pool.workers:
            if worker.outbox_refusal is not None:
                refusing[f"worker-{worker.worker_id}"] = worker.outbox_refusal
        return refusing


async def open_providers(config: Config) -> Providers:
    """Build and warm up the STT, LLM and TTS chains every room of this process shares.

    Warming up loads the local models now (about a second), so the first reply of the first
    room does not pay for it and time out into a fallback.

    Raises:
        ConfigError: a configured vendor has no API key, or a local model is missing.
    """
    if config.voice.providers_factory:
        module_name, _, attribute = config.voice.providers_factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"[voice] providers_factory = {config.voice.providers_factory!r}: cannot import"
                f" it ({type(exc).__name__}); give 'package.module:function'"
            ) from None
        providers: Providers = factory(config)
        return providers
    stt, llm, tts = build_stt(config.stt), build_llm(config.llm), build_tts(config.tts)
    for chain in (stt, llm, tts):
        await chain.warm_up()
    return Providers(
        stt=stt,
        llm=llm,
        tts=tts,
        greeting=config.llm.greeting,
        instructions=config.llm.instructions,
    )


def _bound_port(site: web.TCPSite, configured: int) -> int:
    server = site._server  # aiohttp exposes the bound socket only here
    sockets = getattr(server, "sockets", None)
    if sockets:
        return int(sockets[0].getsockname()[1])
    return configured
