"""The room registry: (room, agent) → supervised actor.

It owns the task group the room actors run in, starts at most ``max_rooms`` of them (the
rest wait, first come first served), restarts a crashed actor with exponential backoff,
gives up on a room that crashes ``max_restarts`` times within ``restart_window_s``, and
drains them all on shutdown. Actors are reached only through their handle's messages.

Each agent of a room (its profile, ``ActorKey.agent``; "" for the default agent) is an actor of
its own, supervised on its own: its own restarts, give-up and lease. ``max_rooms`` counts
actors. A command for a room (``stop``, ``room_finished``) applies to every agent in it.

A room is its name (what an agent joins) and its sid (which incarnation of that name: LiveKit
gives a room created again under the same name a new sid). One actor runs per name; its slot
remembers the sid it was asked for, so that a late or retried ``room_finished`` of an earlier
room with the same name is ignored (counted in ``voice_supervisor_stale_room_finished_total``)
instead of stopping the current room's agent, and a room asked for under a new sid while the
previous room's actor is still ending starts as soon as that actor is gone. An empty sid
(an event without one) matches any.

With ``leases`` (several daemons through Redis), a room's supervision task first claims the
room's lease and runs nothing unless it wins; a keeper task beside the actor renews the lease,
and when it is lost the actor is cancelled at once and not restarted (another daemon owns the
room now). The lease is released when the room's supervision ends.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio
from anyio.abc import TaskGroup, TaskStatus

from actors import SYSTEM_CLOCK, ActorStartError, Clock
from actors.room import ActorKey, RoomSpec
from supervisor._config import SupervisorSettings
from supervisor._incidents import ErrorCode, RoomFailure
from supervisor._metrics import (
    ACTOR_CRASHES,
    ACTOR_GIVE_UPS,
    ACTOR_RESTARTS,
    JOIN_SECONDS,
    ROOMS_ACTIVE,
    ROOMS_WAITING,
    STALE_ROOM_FINISHED,
)

__all__ = ("ActorRunner", "RoomLeases", "RoomRegistry", "RunningRoom")

logger = logging.getLogger(__name__)

# Releasing a lease is bounded by the lease store's own command timeouts; this only backstops
# it (an unreleased lease expires by itself after its TTL).
_LEASE_RELEASE_BACKSTOP_S = 5.0


class RunningRoom(Protocol):
    """A room whose actor has joined, as the registry holds it."""

    def request_stop(self, reason: str) -> None:
        """Ask the actor to finish (its current reply first); non-blocking, idempotent."""
        ...


class ActorRunner(Protocol):
    """Runs one room's actor (on a room host) until it ends; reports it once joined."""

    async def run(self, *, task_status: TaskStatus[RunningRoom] = ...) -> None: ...


class RoomLeases(Protocol):
    """Who may run which room, when several daemons share the rooms (see ``coordination``)."""

    async def claim(self, room: str) -> bool:
        """Try once to take the lease named ``room`` (``ActorKey.lease_name``); never raises
        for a store failure."""
        ...

    async def keep(self, room: str) -> str:
        """Renew the lease until cancelled; return why it was lost."""
        ...

    async def release(self, room: str) -> None:
        """Give the lease back; never raises for a store failure."""
        ...


ActorFactory = Callable[[RoomSpec], ActorRunner]
SpecFactory = Callable[[str, str, int], RoomSpec]
"""(room, agent, attempt) → the spec of that agent's actor."""


@dataclass(slots=True)
class _Slot:
    key: ActorKey
    sid: str
    requested_at: float
    successor: tuple[str, float] | None = None
    """(sid, requested_at) of a newer room of the same name, started once this slot ends."""
    handle: RunningRoom | None = None
    stopping: str = ""
    scope: anyio.CancelScope | None = None
    crashes: deque[float] = field(default_factory=deque)
    stopped: anyio.Event = field(default_factory=anyio.Event)
    wake: anyio.Event = field(default_factory=anyio.Event)


class RoomRegistry:
    """Runs one supervised actor per room.

    Args:
        settings: the ``[supervisor]`` settings.
        make_spec: builds the spec (URL, token) of a room's actor for a given attempt.
        make_actor: builds the actor for a spec.
        clock: time source (backoff sleeps use it).
        leases: room leases shared with other daemons (None: this daemon runs every room).
        on_give_up: told when the registry gives up on a room (the daemon sends an ``error``
            event); it must not block.
    """

    def __init__(
        self,
        settings: SupervisorSettings,
        make_spec: SpecFactory,
        make_actor: ActorFactory,
        *,
        clock: Clock = SYSTEM_CLOCK,
        leases: RoomLeases | None = None,
        on_give_up: Callable[[RoomFailure], None] | None = None,
    ) -> None:
        self._settings = settings
        self._make_spec = make_spec
        self._make_actor = make_actor
        self._clock = clock
        self._leases = leases
        self._on_give_up = on_give_up
        self._slots: dict[ActorKey, _Slot] = {}
        self._waiting: OrderedDict[ActorKey, tuple[str, float]] = OrderedDict()
        """(room, agent) → (sid, requested_at), first come first served."""
        self._given_up: dict[ActorKey, str] = {}
        """(room, agent) → the sid given up on (a new room of that name is joined again)."""
        self._tg: TaskGroup | None = None
        self.accepting = True

    # -- queries ------------------------------------------------------------------------------

    @property
    def rooms(self) -> frozenset[str]:
        """Rooms with an actor (starting, running or restarting)."""
        return frozenset(k.room for k in self._slots)

    @property
    def actors(self) -> frozenset[ActorKey]:
        """Every (room, agent) with an actor (starting, running or restarting)."""
        return frozenset(self._slots)

    @property
    def joined(self) -> frozenset[str]:
        """Rooms with an actor that has joined and is running."""
        return frozenset(k.room for k, s in self._slots.items() if s.handle is not None)

    def requested_before(self, at: float) -> frozenset[str]:
        """Rooms with an actor that was asked for before ``at`` (wall clock)."""
        return frozenset(k.room for k, s in self._slots.items() if s.requested_at < at)

    def sid(self, room: str, agent: str = "") -> str | None:
        """The sid the agent's actor was asked for ("" when unknown), None without an actor."""
        slot = self._slots.get(ActorKey(room, agent))
        return None if slot is None else slot.sid

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def handle(self, room: str, agent: str = "") -> RunningRoom | None:
        slot = self._slots.get(ActorKey(room, agent))
        return None if slot is None else slot.handle

    # -- commands (non-blocking: safe from the webhook path) ----------------------------------

    def ensure(
        self, room: str, requested_at: float | None = None, *, sid: str = "", agent: str = ""
    ) -> None:
        """Make sure the room's ``agent`` has an actor, or waits for a slot when
        ``max_rooms`` is reached.

        Args:
            room: the room's name.
            requested_at: when it was asked for (wall clock; default now).
            sid: the room's sid ("" when unknown). A room of the same name under another sid
                than its running actor's starts once that actor has ended (it belongs to an
                earlier room, which is gone or going: one actor per name at a time).
            agent: the agent's profile name ("" = the default agent).
        """
        if not self.accepting:
            return
        key = ActorKey(room, agent)
        at = self._clock.now() if requested_at is None else requested_at
        given_up = self._given_up.get(key)
        if given_up is not None:
            if not _other(given_up, sid):
                return
            del self._given_up[key]  # a new room under an old name: a fresh start
        slot = self._slots.get(key)
        if slot is not None:
            if not slot.sid:
                slot.sid = sid
            elif _other(slot.sid, sid):
                slot.successor = (sid, at)
            return
        if len(self._slots) >= self._settings.max_rooms:
            waiting = self._waiting.get(key)
            if waiting is None:
                self._waiting[key] = (sid, at)
            elif sid:
                self._waiting[key] = (sid, waiting[1])  # the latest sid; same place in the queue
            ROOMS_WAITING.set(len(self._waiting))
            return
        self._start(key, sid, at)

    def stop(self, room: str, reason: str, *, sid: str = "") -> None:
        """Ask every actor of the room to finish (each saves its session); forget waiting
        ones.

        Args:
            room: the room's name.
            reason: why (recorded as the session's end reason).
            sid: the sid of the room that ended; "" stops whatever runs under ``room``. When
                it names an earlier room than the running actors', nothing is stopped.
        """
        for key in [k for k in self._given_up if k.room == room]:
            if not _other(self._given_up[key], sid):
                del self._given_up[key]
        for key in [k for k in self._waiting if k.room == room]:
            if not _other(self._waiting[key][0], sid):
                del self._waiting[key]
        ROOMS_WAITING.set(len(self._waiting))
        for key in [k for k in self._slots if k.room == room]:
            self._stop_slot(self._slots[key], room, reason, sid)

    def _stop_slot(self, slot: _Slot, room: str, reason: str, sid: str) -> None:
        if slot.successor is not None and not _other(slot.successor[0], sid):
            slot.successor = None  # the newer room ended too, before it got its actor
            if sid:
                return
        if _other(slot.sid, sid):
            STALE_ROOM_FINISHED.inc()
            logger.debug(
                "stop for another room of the same name ignored",
                extra={"room": room, "room_sid": slot.sid, "stale_sid": sid},
            )
            return
        slot.stopping = reason
        slot.wake.set()
        if slot.handle is not None:
            slot.handle.request_stop(reason)
        elif slot.scope is not None:
            # Still joining: a join can hang when the room is deleted meanwhile, so cancel it.
            slot.scope.cancel(reason)

    def forget_missing(self, present: frozenset[str]) -> None:
        """Forget given-up and waiting rooms that no longer exist on the server."""
        for key in [k for k in self._given_up if k.room not in present]:
            del self._given_up[key]
        for key in [k for k in self._waiting if k.room not in present]:
            del self._waiting[key]
        for slot in self._slots.values():
            if slot.successor is not None and slot.key.room not in present:
                slot.successor = None
        ROOMS_WAITING.set(len(self._waiting))

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the actors' task group until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            await anyio.sleep_forever()

    async def drain(self, timeout_s: float) -> bool:
        """Stop intake, ask every actor to stop, and wait up to ``timeout_s`` for them.

        Returns:
            True when every actor finished in time; the caller cancels the rest.
        """
        self.accepting = False
        self._waiting.clear()
        ROOMS_WAITING.set(0)
        for room in self.rooms:
            self.stop(room, "daemon shutting down")
        with anyio.move_on_after(timeout_s):
            for slot in list(self._slots.values()):
                await slot.stopped.wait()
            return True
        logger.warning(
            "drain timed out; cancelling the remaining room actors",
            extra={"rooms": len(self._slots)},
        )
        return False

    # -- supervision --------------------------------------------------------------------------

    def _start(self, key: ActorKey, sid: str, requested_at: float) -> None:
        if self._tg is None:
            raise RuntimeError("RoomRegistry.run() must be started before rooms are ensured")
        slot = _Slot(key, sid, requested_at)
        self._slots[key] = slot
        self._tg.start_soon(self._supervise, slot, name=key.task_name())

    async def _supervise(self, slot: _Slot) -> None:
        try:
            if self._leases is None:
                await self._restart_loop(slot)
            elif await self._leases.claim(slot.key.lease_name()):
                await self._run_leased(slot, self._leases)
        finally:
            self._slots.pop(slot.key, None)
            slot.stopped.set()
            ROOMS_ACTIVE.set(len(self.joined))
            if slot.successor is not None:
                sid, at = slot.successor
                self.ensure(slot.key.room, at, sid=sid, agent=slot.key.agent)
            self._admit_waiting()

    async def _run_leased(self, slot: _Slot, leases: RoomLeases) -> None:
        async def keep() -> None:
            try:
                reason = await leases.keep(slot.key.lease_name())
            except Exception as exc:  # a broken keeper cannot vouch for the lease any more
                reason = type(exc).__name__
            slot.stopping = slot.stopping or f"lease lost ({reason})"
            slot.wake.set()
            if slot.scope is not None:
                slot.scope.cancel("lease lost")  # at once: another daemon may take the room

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(keep, name=f"{slot.key.task_name()}:lease")
                await self._restart_loop(slot)
                tg.cancel_scope.cancel("room supervision ended")
        finally:
            with anyio.move_on_after(_LEASE_RELEASE_BACKSTOP_S, shield=True):
                await leases.release(slot.key.lease_name())

    async def _restart_loop(self, slot: _Slot) -> None:
        attempt = 0
        while not slot.stopping:
            if await self._run_once(slot, attempt):
                return
            if slot.stopping or not self._may_restart(slot):
                return
            delay = min(
                self._settings.restart_backoff_initial_s * 2 ** len(slot.crashes),
                self._settings.restart_backoff_max_s,
            )
            with anyio.move_on_after(delay):
                await slot.wake.wait()
            slot.wake = anyio.Event()
            attempt += 1
            ACTOR_RESTARTS.inc()

    async def _run_once(self, slot: _Slot, attempt: int) -> bool:
        """Run the actor once; True when it ended cleanly (no restart wanted)."""
        room, agent = slot.key
        phase = "start"
        try:
            actor = self._make_actor(self._make_spec(room, agent, attempt))
            async with anyio.create_task_group() as tg:
                slot.scope = tg.cancel_scope
                slot.handle = await tg.start(actor.run, name=f"{slot.key.task_name()}:actor")
                phase = "run"
                ROOMS_ACTIVE.set(len(self.joined))
                if attempt == 0:
                    join_s = max(0.0, self._clock.now() - slot.requested_at)
                    JOIN_SECONDS.observe(join_s)
                    logger.info(
                        "room joined",
                        extra={"room": room, "agent": agent, "join_ms": round(join_s * 1000, 2)},
                    )
                if slot.stopping:
                    slot.handle.request_stop(slot.stopping)
            return True
        except Exception as exc:  # the error boundary of one room: others are never touched
            ACTOR_CRASHES.labels(phase=phase).inc()
            cause = _root_cause(exc)
            logger.warning(
                "room actor failed; will restart with backoff"
                if not slot.stopping
                else "room actor failed while stopping",
                extra={
                    "room": room,
                    "agent": agent,
                    "phase": phase,
                    "error": type(cause).__name__,
                    "attempt": attempt,
                },
                exc_info=cause if not isinstance(cause, ActorStartError) else None,
            )
            slot.crashes.append(self._clock.monotonic())
            return False
        finally:
            slot.handle = None
            slot.scope = None
            ROOMS_ACTIVE.set(len(self.joined))

    def _may_restart(self, slot: _Slot) -> bool:
        now = self._clock.monotonic()
        while slot.crashes and now - slot.crashes[0] > self._settings.restart_window_s:
            slot.crashes.popleft()
        if len(slot.crashes) > self._settings.max_restarts:
            self._given_up[slot.key] = slot.sid
            ACTOR_GIVE_UPS.inc()
            if self._on_give_up is not None:
                restarts = len(slot.crashes) - 1
                room, agent = slot.key
                self._on_give_up(
                    RoomFailure(ErrorCode.ROOM_GIVEN_UP, room, slot.sid, agent, restarts=restarts)
                )
            logger.error(
                "giving up on room after too many restarts; it is left alone until it "
                "is finished and started again",
                extra={
                    "room": slot.key.room,
                    "agent": slot.key.agent,
                    "restarts": len(slot.crashes) - 1,
                },
            )
            return False
        return True

    def _admit_waiting(self) -> None:
        while self.accepting and self._waiting and len(self._slots) < self._settings.max_rooms:
            key, (sid, at) = self._waiting.popitem(last=False)
            self._start(key, sid, at)
        ROOMS_WAITING.set(len(self._waiting))


def _other(known: str, sid: str) -> bool:
    """True when both sids are known and differ: two rooms that only share a name."""
    return bool(known and sid and known != sid)


def _root_cause(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
