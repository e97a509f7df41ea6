"""The persistence actor: room actors hand it events and never wait for the network.

``emit()`` is synchronous and O(1): it checks the event by encoding it (``_encode.py``; an
event that could never be stored or sent is refused there, logged by field and counted) and
appends it to an in-memory queue. The writer task commits the queue in groups (at most
``flush_interval_ms`` or ``batch_max`` events per transaction); an event is acknowledged once
committed.

- With a backend (``backend_url``), the commit goes to this process's durable outbox
  (``_outbox.py``) and the shipper task (``_shipper.py``) takes it to the backend in commit
  order, exactly once, across outages, slow answers and ``kill -9``.
- Without one, the commit goes straight into the embedded store. The store is itself a durable,
  idempotent SQLite database (WAL), so an outbox in front of it would write every event twice
  for no added guarantee.

``emit()`` raises ``OutboxFullError`` while the outbox holds ``outbox_max_mb`` or the disk is
full (``refusal`` says which; readyz reports it): a commit that fails for want of room is
retried with backoff, and logged at most once a minute.

``agent_joined`` and ``recent_messages`` ask the backend under a short timeout and fall back to
local answers, so a backend outage never stops a room. The actor never logs event contents.
"""

from __future__ import annotations

import logging
from collections import deque
from enum import Enum
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskStatus

from actors._clock import SYSTEM_CLOCK, Clock
from actors._events import Event
from actors._exceptions import OutboxFullError, PersistenceError
from actors._pulse import Pulse
from actors.persistence._admission import Admission
from actors.persistence._client import BackendClient, build_http_client
from actors.persistence._encode import serialise
from actors.persistence._logs import LogLimiter
from actors.persistence._lookups import Lookups, warn_about_leftovers
from actors.persistence._metrics import (
    EVENTS_COMMITTED,
    EVENTS_DEAD_LETTERED,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    OUTBOX_REFUSING,
)
from actors.persistence._outbox import Outbox
from actors.persistence._settings import PersistenceSettings
from actors.persistence._shipper import Shipper, SqliteThread
from actors.persistence._store import EmbeddedStore

__all__ = ("PersistenceActor",)

logger = logging.getLogger(__name__)

_SHIP_LOG_INTERVAL_S = 60.0
# While idle, the shipper looks this often for rows another process put in its outbox (the
# dead-letters replay command).
_REFRESH_S = 2.0


class _Phase(Enum):
    """Where ``run()`` is (whether ``close()`` was called is the admission gate's to know)."""

    NEW = "new"  # run() not called yet
    RUNNING = "running"
    WRITTEN = "written"  # the writer has returned: nothing more will be committed
    STOPPED = "stopped"  # run() has returned: nothing more will be shipped


class PersistenceActor:
    """Owns the path from ``emit(event)`` to the backend or the embedded store.

    Args:
        settings: the ``[persistence]`` settings.
        store: the embedded store (the destination without a backend; a fallback for history).
        clock: time source; backend retry waits use its ``sleep``.
    """

    def __init__(
        self, settings: PersistenceSettings, store: EmbeddedStore, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._batch_max = settings.batch_max
        self._queue_max = settings.queue_max
        self._queue: deque[Event] = deque()
        # Their contract JSON, side by side rather than in pairs: a pair per event would be one
        # more object for the garbage collector to track, on the hot path.
        self._bodies: deque[str] = deque()
        self._queue_since: float | None = None
        self._phase = _Phase.NEW
        self._events_arrived = Pulse()  # the queue was empty and is not
        self._batch_due = Pulse()  # commit now: a full batch, a flush or close()
        self._commits = Pulse()  # a batch was committed (or the writer returned)
        self._progress = Pulse()  # something flush() or wait_empty() waits for may have changed
        self._thread = SqliteThread()
        self._lookups = Lookups(settings, store, self._thread)
        self._outbox: Outbox | None = None
        self._client: BackendClient | None = None
        self._shipper: Shipper | None = None
        self._emitted = 0
        self._settled = 0
        self._flush_target = 0
        self._committed = 0
        self._committing = 0  # taken off the queue, not yet committed
        self._unserialisable = 0
        self._gate = Admission(settings, clock)
        self._ship_log = LogLimiter(_SHIP_LOG_INTERVAL_S, clock)
        label = settings.outbox_name
        OUTBOX_BACKLOG.labels(label).set_function(lambda: self.backlog)
        OUTBOX_OLDEST_AGE.labels(label).set_function(lambda: self.oldest_age_s)
        OUTBOX_REFUSING.labels(label).set_function(lambda: self._gate.refusal is not None)

    # -- public surface -----------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Queue an event for durable storage; never blocks, never awaits.

        An event that could never be stored or sent (a string that is not UTF-8, ``data`` that
        is not JSON data, a ``ts`` that is not a finite number) is refused here: logged with
        the field's name (never its value), counted in
        ``voice_supervisor_events_invalid_total``, not committed; the call returns normally.

        Raises:
            OutboxFullError: the actor is closed, its queue holds ``queue_max`` events, the
                outbox holds ``outbox_max_mb`` or the disk is full (``refusal`` says which).
        """
        refusal = self._gate.refusal
        if refusal is not None:
            raise OutboxFullError(refusal)
        queue = self._queue
        size = len(queue)
        if size >= self._queue_max:
            raise OutboxFullError(
                "cannot emit an event: the in-memory queue is full; raise [persistence] queue_max"
            )
        try:
            # Encoding checks every field at once, and the outbox stores this very text.
            body = serialise(event)
        except (TypeError, ValueError):
            self._gate.refuse_invalid(event)
            return
        if size == 0:
            self._queue_since = self._clock.monotonic()
            self._events_arrived.fire()
        queue.append(event)
        self._bodies.append(body)
        self._emitted += 1
        if size + 1 == self._batch_max:
            self._batch_due.fire()

    def close(self) -> None:
        """Stop accepting events; ``run()`` commits what it holds, ships what it can and
        returns (its owner's deadline decides how long shipping may take)."""
        self._gate.close()
        self._events_arrived.fire()
        self._batch_due.fire()

    @property
    def refusal(self) -> str | None:
        """Why ``emit()`` refuses events now (naming the setting or the fix), None while it
        takes them: the outbox holds ``outbox_max_mb``, the disk is full, or the actor is
        closed. Readiness reports it."""
        return self._gate.refusal

    @property
    def backlog(self) -> int:
        """Events emitted but not yet at their destination (in memory or in the outbox)."""
        outbox = self._outbox
        waiting = len(self._queue) + self._committing
        return waiting + (outbox.count if outbox is not None else 0)

    @property
    def oldest_age_s(self) -> float:
        """Age in seconds of the oldest event not yet at its destination (0 when none)."""
        ages = [0.0]
        if self._queue and self._queue_since is not None:
            ages.append(self._clock.monotonic() - self._queue_since)
        outbox = self._outbox
        oldest = outbox.oldest_enqueued_at if outbox is not None else None
        if oldest is not None:
            ages.append(self._clock.now() - oldest)
        return max(ages)

    @property
    def committed(self) -> int:
        """Events acknowledged by this actor (committed to the outbox or the store)."""
        return self._committed

    @property
    def shipped(self) -> int:
        """Events the backend acknowledged since this actor started."""
        return 0 if self._shipper is None else self._shipper.shipped

    @property
    def dead_lettered(self) -> int:
        """Events refused for good (by the backend, or not JSON data) since this actor started."""
        refused = 0 if self._shipper is None else self._shipper.dead_lettered
        return refused + self._unserialisable

    @property
    def invalid(self) -> int:
        """Events ``emit()`` refused since this actor started because a field cannot be stored."""
        return self._gate.invalid

    @property
    def retries(self) -> int:
        """Backend batch requests that failed and were retried since this actor started."""
        return 0 if self._shipper is None else self._shipper.retries

    async def flush(self) -> None:
        """Wait until every event emitted before the call is acknowledged (committed).

        Raises:
            PersistenceError: the actor stopped before it could commit them.
        """
        target = self._emitted
        await anyio.lowlevel.checkpoint()  # an awaited call always yields, even with nothing to do
        while self._settled < target:
            if self._phase in (_Phase.WRITTEN, _Phase.STOPPED):
                raise PersistenceError("cannot flush: the persistence actor has stopped")
            self._hurry(target)
            await self._progress.wait()

    async def wait_empty(self) -> None:
        """Wait until nothing is waiting: every event is at its destination.

        Raises:
            PersistenceError: the actor stopped with events left (they stay in the outbox).
        """
        await anyio.lowlevel.checkpoint()
        while self.backlog:
            if self._phase is _Phase.STOPPED:
                raise PersistenceError("the persistence actor stopped with events left")
            self._hurry(self._emitted)
            await self._progress.wait()

    async def agent_joined(self, room: str, metadata: dict[str, Any]) -> str:
        """The conversation id for a room whose metadata has none.

        Asks the backend when there is one; if it cannot answer within ``lookup_timeout_s``,
        logs a warning and returns a new local id, so the room goes on.
        """
        return await self._lookups.conversation_id(self._client, room, metadata)

    async def recent_messages(self, conversation_id: str, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` messages of a conversation, oldest first.

        With a backend: its messages, then the conversation's turns still in the outbox (they
        are newer, since the outbox ships in order). If the backend cannot answer within
        ``lookup_timeout_s``, logs a warning and uses the embedded store's instead.
        """
        return await self._lookups.history(self._client, self._outbox, conversation_id, limit)

    async def dead_letters(self) -> list[dict[str, Any]]:
        """The outbox's dead-letter table (empty without a backend or before ``run()``)."""
        outbox = self._outbox
        return [] if outbox is None else await self._thread.run(outbox.dead_letters)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open the outbox, then commit and ship until ``close()`` and the work is done.

        Raises:
            OutboxLockedError: another live process uses this outbox.
            RuntimeError: ``run()`` was called twice.
        """
        if self._phase is not _Phase.NEW:
            raise RuntimeError("PersistenceActor.run() can be called only once")
        self._phase = _Phase.RUNNING
        try:
            if self._settings.backend_url is None:
                await self._thread.run(warn_about_leftovers, self._settings)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._write_loop, name="persistence:writer")
                    task_status.started()
            else:
                await self._run_with_backend(task_status)
        finally:
            self._phase = _Phase.STOPPED
            self._progress.fire()

    # -- private ------------------------------------------------------------------------------

    async def _run_with_backend(self, task_status: TaskStatus[None]) -> None:
        settings = self._settings
        outbox = await self._thread.run(
            partial(Outbox.open, settings.outbox_path, synchronous=settings.outbox_synchronous)
        )
        self._outbox = outbox
        self._gate.check_size(outbox)
        if outbox.count:
            logger.info(
                "outbox holds events from an earlier run; shipping them",
                extra={"events": outbox.count},
            )
        http = build_http_client(settings)
        try:
            self._client = BackendClient(http)
            self._shipper = Shipper(outbox, self._thread, self._client, settings, self._clock)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._write_loop, name="persistence:writer")
                tg.start_soon(self._ship_loop, self._shipper, name="persistence:shipper")
                task_status.started()
        finally:
            self._client = None
            with anyio.CancelScope(shield=True):
                await http.aclose()
                await self._thread.run(outbox.close)
            if outbox.count:
                logger.warning(
                    "events left in the outbox for the next start", extra={"events": outbox.count}
                )

    async def _write_loop(self) -> None:
        interval = self._settings.flush_interval_ms / 1000
        try:
            while True:
                if not self._queue:
                    if self._gate.closed:
                        return
                    await self._events_arrived.wait()
                    continue
                if (
                    len(self._queue) < self._batch_max
                    and not self._gate.closed
                    and self._settled >= self._flush_target
                ):
                    with anyio.move_on_after(interval):
                        await self._batch_due.wait()
                while self._queue:
                    wait_s = await self._commit_next()
                    if wait_s is not None:
                        # Storage failed (disk full, store locked): back off, keep the events.
                        await self._clock.sleep(wait_s)
                        break
        finally:
            self._phase = _Phase.WRITTEN
            self._signal_commit()

    async def _commit_next(self) -> float | None:
        """Commit the queue's head; None when done, else how long to wait before retrying."""
        queue, bodies = self._queue, self._bodies
        count = min(len(queue), self._batch_max)
        batch = [queue.popleft() for _ in range(count)]
        batch_bodies = [bodies.popleft() for _ in range(count)]
        self._committing = len(batch)
        try:
            # Shielded so a commit that happened is always counted (the thread finishes anyway).
            with anyio.CancelScope(shield=True):
                outbox = self._outbox
                if outbox is not None:
                    now = self._clock.now()
                    dropped = await self._thread.run(outbox.append, batch, now, batch_bodies)
                else:
                    dropped = await self._thread.run(self._store.apply_or_drop, batch)
        except Exception as exc:
            # The database's fault, not an event's (the outbox and the store set those aside).
            queue.extendleft(reversed(batch))
            bodies.extendleft(reversed(batch_bodies))
            return self._gate.storage_failed(exc, len(batch))
        finally:
            self._committing = 0
        self._gate.storage_recovered()
        if self._outbox is not None:
            self._gate.check_size(self._outbox)
        if not queue:
            self._queue_since = None
        label = self._settings.outbox_name
        self._settled += len(batch)
        self._committed += len(batch) - dropped
        EVENTS_COMMITTED.labels(label).inc(len(batch) - dropped)
        if dropped:
            self._unserialisable += dropped
            EVENTS_DEAD_LETTERED.labels(label, "unstorable").inc(dropped)
            logger.error("events that cannot be stored were refused", extra={"events": dropped})
        self._signal_commit()
        return None

    async def _ship_loop(self, shipper: Shipper) -> None:
        while True:
            committed = self._commits.next()
            try:
                shipped = await shipper.ship_head()
            except Exception as exc:
                # The actor's error boundary: an outbox failure must not end the daemon.
                held = self._ship_log.allow()
                if held is not None:
                    logger.error(
                        "shipping failed; will retry",
                        extra={"error": f"{type(exc).__name__}: {exc}", "held_back": held},
                    )
                await self._clock.sleep(self._settings.retry_max_s)
                continue
            self._ship_log.reset()
            if self._outbox is not None:
                self._gate.check_size(self._outbox)
            self._progress.fire()
            if shipped:
                continue
            if self._phase is not _Phase.RUNNING:
                return
            with anyio.move_on_after(_REFRESH_S):
                await committed.wait()
            outbox = self._outbox
            if not committed.is_set() and outbox is not None:
                await self._thread.run(outbox.refresh)

    def _hurry(self, target: int) -> None:
        """Commit up to the ``target``-th emitted event without waiting for the interval."""
        self._flush_target = max(self._flush_target, target)
        self._batch_due.fire()

    def _signal_commit(self) -> None:
        self._commits.fire()
        self._progress.fire()
