"""The room host: everything a process needs to run rooms, driven by worker-protocol messages.

It owns the providers (opened once, unless given), a persistence actor with its own outbox,
the per-user limits, the reloadable settings, and one room actor per room, each in a cancel
scope of its own. It speaks only the typed messages of ``supervisor.host._protocol``, over a
``HostLink``: in a worker process over its pipes, with ``workers = 0`` in the supervisor's
process over memory. Restart decisions belong to the supervisor; a host only reports how each
room ended, as a ``RoomEndKind``. Each agent of a room (``ActorKey``) is an actor of its own.

A room is stopped the two ways the registry stops one: ``StopRoom`` asks its actor to finish
through its inbox, ``CancelRoom`` cancels it at once (its lease was lost: another daemon may
be answering in the room already). Either way the actor saves its session and leaves within
its close timeout, then ``RoomEnded`` is sent.
"""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Awaitable, Callable
from dataclasses import replace

import anyio
from anyio.abc import TaskGroup, TaskStatus

from actors import SYSTEM_CLOCK, ActorStartError, Clock, ConfigError
from actors.persistence import EmbeddedStore, PersistenceActor
from actors.providers import provider_health
from actors.room import (
    ActorKey,
    Floor,
    LocalFloor,
    Providers,
    RoomActor,
    RoomHandle,
    RoomSpec,
    Team,
    VoiceSettings,
)
from supervisor._config import Config, parse_config
from supervisor._logging import configure_logging
from supervisor.coordination import GatedLlm, RedisFloor, RedisRelay, RedisStore, UserLimits
from supervisor.host._link import HostLink
from supervisor.host._metrics_wire import snapshot
from supervisor.host._protocol import (
    CancelRoom,
    InitFailed,
    Message,
    Ping,
    Pong,
    Ready,
    Reload,
    RoomEnded,
    RoomEndKind,
    RoomStarted,
    Shutdown,
    StartRoom,
    StopRoom,
)
from supervisor.host._providers import (
    close_providers,
    open_agent_providers,
    open_providers,
    open_tool_box,
)

__all__ = ("RELOADABLE", "RoomHost")

logger = logging.getLogger(__name__)

RELOADABLE = frozenset({"agent", "agents", "logging", "voice", "data"})
"""Config sections a reload applies to new rooms; the others need a restart."""

_CLOSE_BACKSTOP_S = 5.0
"""Closing providers and the Redis client at exit: each is bounded by its own timeouts."""


class RoomHost:
    """Runs the rooms of one process until told to shut down or its link ends.

    Args:
        host_id: its number among the daemon's hosts (names its outbox: ``worker-N``).
        config: the configuration (reloads replace ``RELOADABLE`` sections).
        providers: STT/LLM/TTS to use (None: opened from the config, and closed at exit).
        report_metrics: send a snapshot of this process's metrics in each pong (off for a host
            in the supervisor's process: its metrics are the supervisor's already).
        clock: time source.
    """

    def __init__(
        self,
        host_id: int,
        config: Config,
        *,
        providers: Providers | None = None,
        report_metrics: bool = True,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.host_id = host_id
        self.config = config
        self._providers = providers
        self._owns_providers = providers is None
        self._own: dict[str, tuple[object, Providers]] = {}
        """The agents with providers of their own (``[agents.NAME.llm]``...): built from which
        settings, and the providers (rebuilt when a reload changes those settings)."""
        self._retired: list[Providers] = []
        """Own providers a reload replaced: rooms may still use them until the host ends."""
        self._report_metrics = report_metrics
        self._clock = clock
        self._limits: UserLimits | None = None
        self._persistence: PersistenceActor | None = None
        self._link: HostLink | None = None
        self._handles: dict[ActorKey, RoomHandle] = {}
        self._scopes: dict[ActorKey, anyio.CancelScope] = {}
        """Every room's scope, from its start to its end (``_handles``: once joined)."""
        self._teams: dict[str, Team] = {}
        """Each room's agents on this host: their floor and history, shared in memory."""
        self._shared: dict[str, list[anyio.CancelScope]] = {}
        """The tasks of each room's Redis floor and conversation stream (its agents may be on
        several daemons), by room; cancelled when its last agent here ends."""
        self._redis: RedisStore | None = None
        self._rooms_tg: TaskGroup | None = None
        self._warm_up: Callable[[], Awaitable[None]] | None = None
        """Loads the models; run once, when the first room has joined."""
        self._done = anyio.Event()
        self._room_ended = anyio.Event()

    async def run(
        self, link: HostLink, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Open what rooms need, say ``Ready``, and serve the link until shut down."""
        cfg = self.config
        self._link = link
        if self._providers is None and cfg.voice.enabled:
            try:
                opened = open_providers(cfg)
            except ConfigError as exc:
                # Restarting would fail the same way: the supervisor stops and `run` exits 2.
                with anyio.move_on_after(_CLOSE_BACKSTOP_S, shield=True):
                    await link.send(InitFailed(self.host_id, str(exc)))
                    await link.aclose()
                task_status.started()
                return
            self._providers, self._warm_up = opened.providers, opened.warm_up
        elif self._providers is not None and self._providers.tools is None:
            self._providers = replace(self._providers, tools=open_tool_box(cfg))
        redis_store = self._redis = RedisStore(cfg.redis) if cfg.redis.enabled else None
        if redis_store is not None:
            # Per-user limits hold across daemons and hosts: each host checks them itself.
            limits = UserLimits(cfg.redis, redis_store)
            self._limits = limits if limits.enabled else None
        store = EmbeddedStore(cfg.persistence.store_path)
        outbox = cfg.persistence.model_copy(update={"outbox_name": f"worker-{self.host_id}"})
        persistence = PersistenceActor(outbox, store, self._clock)
        self._persistence = persistence
        try:
            async with anyio.create_task_group() as outer:
                await outer.start(persistence.run, name="persistence")
                async with anyio.create_task_group() as rooms:
                    self._rooms_tg = rooms
                    rooms.start_soon(self._serve, link, name="host:link")
                    if self._providers is not None and self._providers.tools is not None:
                        await rooms.start(self._providers.tools.run, name="host:tools")
                    if self._limits is not None:
                        rooms.start_soon(self._refresh_limits, self._limits, name="host:limits")
                    await link.send(Ready(self.host_id, os.getpid()))
                    task_status.started()
                    await self._done.wait()
                    rooms.cancel_scope.cancel("host shutting down")
                persistence.close()
                outer.cancel_scope.deadline = anyio.current_time() + cfg.supervisor.drain_timeout_s
        finally:
            with anyio.move_on_after(_CLOSE_BACKSTOP_S, shield=True):
                await link.aclose()
                if self._providers is not None:
                    for own in [*(p for _, p in self._own.values()), *self._retired]:
                        await close_providers(own, self._providers)
                if self._owns_providers and self._providers is not None:
                    await close_providers(self._providers)
                if redis_store is not None:
                    await redis_store.aclose()
            store.close()

    # -- messages -----------------------------------------------------------------------------

    async def _serve(self, link: HostLink) -> None:
        while True:
            try:
                message = await link.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                break
            await self._dispatch(message)
        # The supervisor is gone: stop what we host and end.
        await self._shutdown(self.config.supervisor.drain_timeout_s)

    async def _dispatch(self, message: Message) -> None:
        match message:
            case StartRoom():
                assert self._rooms_tg is not None
                spec = RoomSpec(
                    message.room, message.url, message.token, message.attempt, message.agent
                )
                self._rooms_tg.start_soon(self._room, spec, name=spec.key.task_name())
            case StopRoom(room=room, reason=reason, agent=agent):
                key = ActorKey(room, agent)
                handle = self._handles.get(key)
                if handle is not None:
                    handle.request_stop(reason)
                elif key in self._scopes:
                    self._scopes[key].cancel(reason)  # still joining: nothing to finish
            case CancelRoom(room=room, reason=reason, agent=agent):
                if (room, agent) in self._scopes:
                    self._scopes[ActorKey(room, agent)].cancel(reason)
            case Ping(seq=seq):
                persistence = self._persistence
                refusal = None if persistence is None else persistence.refusal
                metrics = snapshot() if self._report_metrics else []
                await self._send(Pong(seq, _rss_mb(), metrics, refusal, provider_health()))
            case Reload(config=data):
                self._reload(parse_config(data, environ={}))
            case Shutdown(deadline_s=deadline_s):
                await self._shutdown(deadline_s)
            case _:
                logger.error("unexpected message for a room host", extra={"type": type(message)})

    async def _warm(self, warm_up: Callable[[], Awaitable[None]]) -> None:
        try:
            await warm_up()
        except Exception as exc:  # each room then loads (or fails over) on first use
            logger.warning("loading the models failed", extra={"error": type(exc).__name__})

    def _reload(self, new: Config) -> None:
        configure_logging(new.logging)
        self.config = self.config.model_copy(
            update={name: getattr(new, name) for name in RELOADABLE}
        )

    async def _send(self, message: Message) -> None:
        if self._link is None:
            return
        try:
            await self._link.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass  # the supervisor is gone; the link's end stops the host

    async def _shutdown(self, deadline_s: float) -> None:
        for handle in list(self._handles.values()):
            handle.request_stop("daemon shutting down")
        for key, scope in list(self._scopes.items()):
            if key not in self._handles:
                scope.cancel("daemon shutting down")
        with anyio.move_on_after(deadline_s):
            while self._scopes:
                await self._room_ended.wait()
        self._done.set()

    # -- one room -----------------------------------------------------------------------------

    async def _room(self, spec: RoomSpec) -> None:
        assert self._persistence is not None
        cfg = self.config
        limits = self._limits
        try:
            providers = self._providers_of(spec.agent)
        except ConfigError as exc:  # its own chains (a reload may have changed them)
            logger.error("an agent's own providers cannot be built", extra={"error": str(exc)})
            await self._send(
                RoomEnded(spec.room, RoomEndKind.START_FAILED.value, "ConfigError", spec.agent)
            )
            return
        actor: RoomActor | None = None
        if providers is not None and limits is not None:

            def user_of() -> str | None:
                return None if actor is None else actor.session.user_id

            providers = replace(providers, llm=GatedLlm(providers.llm, limits, spec.room, user_of))
        profile = cfg.profiles().get(spec.agent)
        if profile is None:  # removed by a reload after the supervisor asked for it
            await self._send(
                RoomEnded(spec.room, RoomEndKind.START_FAILED.value, "UnknownAgent", spec.agent)
            )
            return
        settings = cfg.agent.room_settings().model_copy(
            update={"identity": profile.identity, "name": profile.name or spec.agent}
        )
        actor = RoomActor(
            spec,
            settings,
            self._persistence,
            profiles=cfg.profiles(),
            team=self._team(spec.room),
            history_limit=cfg.persistence.history_limit,
            providers=providers,
            voice=cfg.voice if not spec.agent else _team_voice(cfg.voice),
            data=cfg.data,
            clock=self._clock,
        )
        kind, detail = RoomEndKind.CLEAN, ""
        handle: RoomHandle | None = None
        key = spec.key
        scope = anyio.CancelScope()
        self._scopes[key] = scope
        try:
            with scope:
                async with anyio.create_task_group() as tg:
                    handle = await tg.start(actor.run, name=f"{key.task_name()}:actor")
                    self._relay(actor.team, handle.conversation_id)
                    self._handles[key] = handle
                    await self._send(RoomStarted(spec.room, handle.conversation_id, spec.agent))
                    if self._warm_up is not None and self._rooms_tg is not None:
                        # After the first join, which loading would slow (it competes for the
                        # CPU); what the greeting needs first loads on demand meanwhile.
                        self._rooms_tg.start_soon(self._warm, self._warm_up, name="host:warm-up")
                        self._warm_up = None
            if scope.cancelled_caught:
                kind = RoomEndKind.CANCELLED
        except Exception as exc:  # reported to the supervisor, which decides on a restart
            kind, detail = _ending(exc)
        finally:
            # Only this run's entries: a StartRoom for the same room may have come meanwhile.
            if self._scopes.get(key) is scope:
                del self._scopes[key]
            if handle is not None and self._handles.get(key) is handle:
                del self._handles[key]
            if all(k.room != spec.room for k in self._scopes):  # the room's last agent here
                self._teams.pop(spec.room, None)
                for shared in self._shared.pop(spec.room, []):
                    shared.cancel("the room's last agent here ended")
                if limits is not None:
                    with anyio.move_on_after(_CLOSE_BACKSTOP_S, shield=True):
                        await limits.leave(spec.room)
            self._room_ended.set()
            self._room_ended = anyio.Event()
        if handle is None and kind is RoomEndKind.CLEAN:
            kind = RoomEndKind.CANCELLED  # stopped before it joined
        await self._send(RoomEnded(spec.room, kind.value, detail, spec.agent))

    def _providers_of(self, agent: str) -> Providers | None:
        """The providers of agent ``agent``: the shared ones, or its own (built once, and again
        after a reload changed its provider settings)."""
        shared = self._providers
        profile = self.config.agents.get(agent)
        if shared is None or profile is None or not profile.own_providers:
            return shared
        stages = self.config.stages(agent)
        known = self._own.get(agent)
        if known is not None and known[0] == stages:
            return known[1]
        own = open_agent_providers(self.config, agent, shared)
        if known is not None:
            self._retired.append(known[1])
        self._own[agent] = (stages, own)
        return own

    def _team(self, room: str) -> Team:
        team = self._teams.get(room)
        if team is None:
            cfg = self.config
            gap_s = cfg.voice.floor_gap_ms / 1000
            floor: Floor = LocalFloor(gap_s)
            if self._redis is not None and cfg.agents and self._rooms_tg is not None:
                # A room's agents may run on other daemons too: the floor is Redis's.
                ttl_s = cfg.redis.lease_ttl_s
                floor = redis_floor = RedisFloor(self._redis, room, ttl_s=ttl_s, gap_s=gap_s)
                self._start_shared(room, redis_floor.run, f"floor:{room}")
            team = self._teams[room] = Team(room, floor)
        return team

    def _relay(self, team: Team, conversation_id: str) -> None:
        """The room's conversation stream, once per team, when its agents may be elsewhere."""
        cfg = self.config
        if team.relay is not None or self._redis is None or not cfg.agents:
            return
        relay = RedisRelay(
            self._redis,
            team,
            conversation_id,
            node_id=cfg.redis.node_id,
            keep=cfg.persistence.history_limit,
            block_s=cfg.redis.timeout_s / 2,
        )
        team.relay = relay
        self._start_shared(team.room, relay.run, f"relay:{team.room}")

    def _start_shared(self, room: str, run: Callable[[], Awaitable[None]], name: str) -> None:
        assert self._rooms_tg is not None
        scope = anyio.CancelScope()
        self._shared.setdefault(room, []).append(scope)

        async def task() -> None:
            with scope:
                await run()

        self._rooms_tg.start_soon(task, name=name)

    async def _refresh_limits(self, limits: UserLimits) -> None:
        # Each room keeps its place among its user's rooms for one lease TTL; one task renews
        # every room of the host at a third of it.
        while True:
            await self._clock.sleep(self.config.redis.lease_ttl_s / 3)
            for room in {key.room for key in self._handles}:
                await limits.refresh(room)


def _team_voice(voice: VoiceSettings) -> VoiceSettings:
    """The voice of a profile's agent: its track runs without a break (see the setting)."""
    if not voice.team_audio_out_queue_ms:
        return voice
    return voice.model_copy(update={"audio_out_queue_ms": voice.team_audio_out_queue_ms})


def _ending(exc: Exception) -> tuple[RoomEndKind, str]:
    """How a room that raised ended, and the type of its root cause (never its message)."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    kind = RoomEndKind.START_FAILED if isinstance(exc, ActorStartError) else RoomEndKind.CRASHED
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return kind, type(cause).__name__


def _rss_mb() -> float:
    """This process's resident memory now (Linux: ``/proc/self/statm``)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * resource.getpagesize() / (1024 * 1024)
