"""The supervisor: turns webhook messages and the server's room list into registry commands.

It reads its bounded mailbox (fed by the webhook endpoint) and, at start-up and every
``reconcile_interval_s``, lists the server's rooms so that a lost webhook costs at most one
interval. It never talks to an actor except through the registry.

Rooms are told apart by sid as well as name: a room created again under a finished room's name
is a new room (joined as usual), while late or retried events of the finished one neither
start an agent (that would create the room again) nor stop the new room's agent. A start
event older than ``_STALE_EVENT_S`` (LiveKit retried it while the daemon was down or busy)
is not trusted either: the room may have ended since, so it asks for a reconcile, whose listing
says whether the room is still there.

A room gets one actor per agent its metadata's ``agents`` names (``actors.room.room_agents``;
the default agent when it names none), both from a webhook and from a listing.

Each listing is also the daemon's probe of LiveKit: ``livekit_health()`` says how the last one
went and since when the server has not answered, which readyz reports.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream
from livekit import api

from actors import SYSTEM_CLOCK, Clock
from actors.room import AgentProfile, room_agents
from supervisor._config import AgentSettings, SupervisorSettings
from supervisor._messages import ParticipantJoined, RoomFinished, RoomStarted, SupervisorMessage
from supervisor._metrics import LIVEKIT_UP, RECONCILE_RUNS
from supervisor._registry import RoomRegistry

__all__ = ("Supervisor",)

logger = logging.getLogger(__name__)

_FINISHED_SIDS_KEPT = 4096
_UNREACHABLE_INTERVALS = 2
"""Reconcile intervals without a listing after which LiveKit counts as unreachable."""
_UNREACHABLE_MIN_S = 5.0
"""...and at least this long: one failed call (a server restarting) is no outage."""
_STALE_EVENT_S = 10.0
"""A start event older than this (by LiveKit's clock) goes through a listing first. Fresh ones
are joined at once; a clock skew above this only costs one listing per join."""


class Supervisor:
    """Decides which rooms get an actor.

    Args:
        settings: ``[supervisor]`` settings.
        agent: ``[agent]`` settings (room rules, the agent's identity).
        registry: runs the actors.
        mailbox: receive side of the webhook mailbox.
        lkapi: the room service client used to reconcile.
        agents: the ``[agents.NAME]`` profiles a room's metadata may name.
        clock: time source.
    """

    def __init__(
        self,
        settings: SupervisorSettings,
        agent: AgentSettings,
        registry: RoomRegistry,
        mailbox: MemoryObjectReceiveStream[SupervisorMessage],
        lkapi: api.LiveKitAPI,
        *,
        agents: Mapping[str, AgentProfile] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._settings = settings
        self.agent = agent
        self.agents: Mapping[str, AgentProfile] = dict(agents or {})
        self._registry = registry
        self._mailbox = mailbox
        self._lkapi = lkapi
        self._clock = clock
        # Webhooks can arrive late or out of order: never rejoin a room whose end we saw,
        # since joining would create it again. Keyed by sid, not name: a new room under the
        # same name (a new sid) is joined.
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._reconcile_now = anyio.Event()
        self._since = clock.monotonic()
        """The last listing that worked (until there is one: when this supervisor began)."""
        self._listed = False
        self._last_error: str | None = None
        """The error type of the last listing, None when it worked."""
        self._last_at: float | None = None

    def livekit_health(self) -> tuple[bool, dict[str, object]]:
        """Whether LiveKit's room service answers, and the facts behind it.

        It counts as unreachable once no listing has worked for two reconcile intervals (at
        least ``_UNREACHABLE_MIN_S``), counted from the last one that did or, before the first,
        from the start: then the daemon cannot see rooms, and agents it starts could not join.
        """
        now = self._clock.monotonic()
        silent_s = now - self._since
        limit_s = max(
            _UNREACHABLE_INTERVALS * self._settings.reconcile_interval_s, _UNREACHABLE_MIN_S
        )
        details: dict[str, object] = {
            "reachable": silent_s <= limit_s,
            "last_call": None if self._last_at is None else self._last_error or "ok",
            "last_call_age_s": None if self._last_at is None else round(now - self._last_at, 1),
            "last_ok_age_s": round(silent_s, 1) if self._listed else None,
        }
        return silent_s <= limit_s, details

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve the mailbox and reconcile periodically until cancelled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._reconcile_loop, name="supervisor:reconcile")
            task_status.started()
            async with self._mailbox:
                async for message in self._mailbox:
                    self._dispatch(message)
                    # Take what is already queued without yielding: receive() yields to the
                    # loop on every call, so a burst would otherwise fill the mailbox (503s)
                    # while the CPU is idle.
                    while True:
                        try:
                            self._dispatch(self._mailbox.receive_nowait())
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
            tg.cancel_scope.cancel("mailbox closed")

    def request_reconcile(self) -> None:
        """Reconcile now instead of at the next interval."""
        self._reconcile_now.set()

    def _dispatch(self, message: SupervisorMessage) -> None:
        match message:
            case RoomStarted(room=room, sid=sid, received_at=at, created_at=created):
                if sid not in self._finished and self.agent.wants(room):
                    self._start(room, sid, at, created, message.metadata)
            case ParticipantJoined(
                room=room, sid=sid, identity=identity, received_at=at, created_at=created
            ):
                if (
                    not self._is_agent(identity)
                    and sid not in self._finished
                    and self.agent.wants(room)
                ):
                    self._start(room, sid, at, created, message.metadata)
            case RoomFinished(room=room, sid=sid):
                if sid:
                    self._finished[sid] = None
                    while len(self._finished) > _FINISHED_SIDS_KEPT:
                        self._finished.popitem(last=False)
                # With its sid, only that room's agent stops: a retried room_finished of an
                # earlier room with the same name leaves the current one alone.
                self._registry.stop(room, "room finished", sid=sid)

    def _start(
        self, room: str, sid: str, received_at: float, created_at: float | None, metadata: str
    ) -> None:
        if created_at is not None and self._clock.now() - created_at > _STALE_EVENT_S:
            # Joining a room that has ended would create it again, with an agent alone in
            # it and a session the backend never asked for.
            logger.info("late webhook; checking the room list first", extra={"room": room})
            self.request_reconcile()
            return
        self._ensure(room, received_at, sid, metadata)

    def _ensure(self, room: str, at: float | None, sid: str, metadata: str) -> None:
        for agent in room_agents(metadata, self.agents):
            self._registry.ensure(room, at, sid=sid, agent=agent)

    def _is_agent(self, identity: str) -> bool:
        return identity == self.agent.identity or any(
            p.identity == identity for p in self.agents.values()
        )

    async def _reconcile_loop(self) -> None:
        while True:
            await self.reconcile()
            with anyio.move_on_after(self._settings.reconcile_interval_s):
                await self._reconcile_now.wait()
            self._reconcile_now = anyio.Event()

    async def reconcile(self) -> None:
        """Start actors for rooms that should have one; stop those whose room is gone."""
        asked_at = self._clock.now()
        try:
            with anyio.fail_after(max(5.0, self._settings.reconcile_interval_s)):
                listed = (await self._lkapi.room.list_rooms(api.ListRoomsRequest())).rooms
        except Exception as exc:  # the server may be down: keep the actors, try next interval
            RECONCILE_RUNS.labels(result="error").inc()
            self._last_error, self._last_at = type(exc).__name__, self._clock.monotonic()
            LIVEKIT_UP.set(0)
            logger.warning(
                "reconcile could not list rooms; will retry", extra={"error": type(exc).__name__}
            )
            return
        self._listed, self._last_error = True, None
        self._since = self._last_at = self._clock.monotonic()
        LIVEKIT_UP.set(1)
        present = frozenset(r.name for r in listed)
        self._registry.forget_missing(present)
        for room in listed:
            if room.sid not in self._finished and self.agent.wants(room.name):
                self._ensure(room.name, None, room.sid, room.metadata)
        # A room asked for after the listing began may simply be too new to be listed.
        for room_name in self._registry.requested_before(asked_at) - present:
            self._registry.stop(room_name, "room gone (reconcile)")
        RECONCILE_RUNS.labels(result="ok").inc()
