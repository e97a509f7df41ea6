"""Room failures as the backend contract's ``error`` events.

``RoomIncidents`` turns each failure of a room's agent into one ``error`` event
(``actors._payloads.ErrorData``) through the daemon's own persistence actor (its outbox
``main``, shipped to the backend; or the embedded store without one), so that the team's
backend learns which rooms were left without an agent, not only the on-call engineer's logs:

- ``room_start_failed`` and ``room_crashed``: ``watch(runner)`` wraps each room runner the
  registry starts, and sees whether it failed before or after it reported the room joined;
- ``room_given_up``: the registry calls ``report`` when it gives up on a room.

The event's ``conversation_id`` is the one the room's agent had (remembered from its last
run); a room whose agent never joined has none yet, and its event carries the room's name
there instead. Nothing a person said is in an event: ``message`` is a fixed sentence,
``error_type`` an exception's type name. Reporting never blocks and never raises.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

import anyio
from anyio.abc import TaskStatus

from actors import SYSTEM_CLOCK, Clock, Event, EventType, OutboxFullError
from actors._payloads import ErrorData, payload_json
from actors.room import RoomSpec

__all__ = ("ErrorCode", "EventSink", "RoomFailure", "RoomIncidents", "WatchedRunner")

logger = logging.getLogger(__name__)

_ROOMS_REMEMBERED = 4096
"""Rooms whose last run is remembered (the conversation id a give-up event carries)."""


class ErrorCode(StrEnum):
    """The ``code`` of the ``error`` events the daemon sends."""

    ROOM_START_FAILED = "room_start_failed"
    """The agent could not join the room (or its host could not start it); it is retried
    with backoff unless the registry gives up."""
    ROOM_CRASHED = "room_crashed"
    """The agent's actor failed after joining; it is restarted with backoff, and the
    conversation goes on with its history restored."""
    ROOM_GIVEN_UP = "room_given_up"
    """More than ``max_restarts`` failures within ``restart_window_s``: the room has no agent
    until it is finished and started again."""


_MESSAGES = {
    ErrorCode.ROOM_START_FAILED: "the agent could not join the room; retrying with backoff",
    ErrorCode.ROOM_CRASHED: "the agent failed in the room; restarting it with backoff",
    ErrorCode.ROOM_GIVEN_UP: (
        "the agent failed too often in this room and was given up on; the room has no agent "
        "until it is finished and started again"
    ),
}


@dataclass(frozen=True, slots=True)
class RoomFailure:
    """One failure of a room's agent.

    Attributes:
        code: which failure.
        room: the room's name.
        sid: the room's sid ("" when unknown).
        agent: the agent's profile (``[agents.NAME]``; "" for the default agent).
        conversation_id: the conversation the agent had ("" when unknown).
        attempt: which start of the actor failed (0 = the first).
        restarts: restarts within ``restart_window_s`` (``room_given_up``), else 0.
        error_type: the failure's exception type, when there is one.
    """

    code: ErrorCode
    room: str
    sid: str = ""
    agent: str = ""
    conversation_id: str = ""
    attempt: int = 0
    restarts: int = 0
    error_type: str | None = None


class EventSink(Protocol):
    """Where the events go (the daemon's ``PersistenceActor``)."""

    def emit(self, event: Event) -> None: ...


class WatchedRunner(Protocol):
    """A room runner as ``watch`` wraps it (``supervisor.workers.RoomRunner``)."""

    @property
    def spec(self) -> RoomSpec: ...

    @property
    def conversation_id(self) -> str:
        """The room's conversation, once it has joined ("" before)."""
        ...

    @property
    def failure(self) -> str:
        """Why it failed, as its host said ("" when it did not say)."""
        ...

    async def run(self, *, task_status: TaskStatus[Any] = ...) -> None: ...


class _Stoppable(Protocol):
    def request_stop(self, reason: str) -> None: ...


class RoomIncidents:
    """Turns room failures into ``error`` events.

    Args:
        sink: the persistence actor the events go to.
        clock: time source (the events' ``ts``).
    """

    def __init__(self, sink: EventSink, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._sink = sink
        self._clock = clock
        self._last: OrderedDict[tuple[str, str], RoomFailure] = OrderedDict()
        """(room, agent) → what its last failed run was (conversation, attempt, error type)."""
        self.refused = 0
        """Events the persistence actor refused (its outbox full); it logs the cause."""

    def watch(self, runner: WatchedRunner) -> _Watched:
        """``runner``, reporting its failure (before or after joining) when it fails."""
        return _Watched(runner, self)

    def report(self, failure: RoomFailure) -> None:
        """Record one failure as an event; non-blocking, never raises.

        A failure keeps the conversation an earlier run of the room's agent had (a restart
        that cannot join again has none of its own), and a give-up takes the last failed run's
        attempt and error type, which the registry does not know.
        """
        key = (failure.room, failure.agent)
        last = self._last.pop(key, None)
        if last is not None:
            failure = replace(
                failure, conversation_id=failure.conversation_id or last.conversation_id
            )
            if failure.code is ErrorCode.ROOM_GIVEN_UP:
                failure = replace(
                    failure,
                    attempt=failure.attempt or last.attempt,
                    error_type=failure.error_type or last.error_type,
                )
        if failure.code is not ErrorCode.ROOM_GIVEN_UP:
            self._last[key] = failure
            while len(self._last) > _ROOMS_REMEMBERED:
                self._last.popitem(last=False)
        data = ErrorData(
            code=failure.code.value,
            message=_MESSAGES[failure.code],
            room_sid=failure.sid or None,
            agent=failure.agent or None,
            attempt=failure.attempt,
            restarts=failure.restarts,
            error_type=failure.error_type,
        )
        event = Event(
            EventType.ERROR,
            failure.room,
            failure.conversation_id or failure.room,
            payload_json(data),
            self._clock.now(),
        )
        try:
            self._sink.emit(event)
        except OutboxFullError:
            self.refused += 1
            if self.refused & (self.refused - 1) == 0:  # once per power of two
                logger.error(
                    "persistence refused an error event",
                    extra={"room": failure.room, "code": failure.code.value},
                )

    def ended_cleanly(self, room: str, agent: str = "") -> None:
        """The room's agent finished without failing: forget its last failure."""
        self._last.pop((room, agent), None)


class _Watched:
    """A runner whose failure is reported; the registry holds it as the running room."""

    def __init__(self, runner: WatchedRunner, incidents: RoomIncidents) -> None:
        self._runner = runner
        self._incidents = incidents
        self._joined: _Stoppable | None = None
        self._stopping = False

    @property
    def conversation_id(self) -> str:
        return self._runner.conversation_id

    def request_stop(self, reason: str) -> None:
        self._stopping = True
        if self._joined is not None:
            self._joined.request_stop(reason)

    async def run(self, *, task_status: TaskStatus[_Watched] = anyio.TASK_STATUS_IGNORED) -> None:
        spec = self._runner.spec
        try:
            await self._runner.run(task_status=_Relay(self, task_status))
        except Exception as exc:
            if not self._stopping:  # a failure while stopping ends the room anyway
                self._incidents.report(
                    RoomFailure(
                        ErrorCode.ROOM_CRASHED if self._joined else ErrorCode.ROOM_START_FAILED,
                        spec.room,
                        agent=spec.agent,
                        conversation_id=self._runner.conversation_id,
                        attempt=spec.attempt,
                        error_type=self._runner.failure or type(_cause(exc)).__name__,
                    )
                )
            raise
        self._incidents.ended_cleanly(spec.room, spec.agent)

    def _started(self, joined: _Stoppable) -> None:
        self._joined = joined


class _Relay:
    """The task status handed to the wrapped runner: notes the join, then passes it on."""

    def __init__(self, watched: _Watched, outer: TaskStatus[_Watched]) -> None:
        self._watched = watched
        self._outer = outer

    def started(self, value: Any = None) -> None:
        self._watched._started(value)
        self._outer.started(self._watched)


def _cause(exc: BaseException) -> BaseException:
    """What an actor error stands for: its cause when it wraps one (``ActorCrashed``)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
