"""The shipper: takes the outbox's oldest rows to the backend, one batch in flight at a time.

Shipping the head of the outbox in commit order, and deleting rows only after the backend's
200, is what keeps the two promises: order per conversation (nothing overtakes) and exactly
once (a batch may be sent twice after a lost answer or a crash, and the backend de-duplicates
by event id).

A batch that fails retryably is retried as is (tenacity: exponential backoff with jitter, or
the backend's ``Retry-After``). A final refusal that names an event dead-letters that event and
ships the rest; one that names none is bisected until the refused events are alone, so one bad
event never holds up, or takes down, its neighbours.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple

import anyio
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

from actors._clock import Clock
from actors._exceptions import BackendRejected
from actors.persistence._client import BackendClient
from actors.persistence._errors import BackendUnavailable, EventRejected, is_retryable
from actors.persistence._metrics import (
    BATCH_SECONDS,
    EVENTS_DEAD_LETTERED,
    EVENTS_SHIPPED,
    SHIP_RETRIES,
)
from actors.persistence._outbox import Outbox, OutboxRow
from actors.persistence._settings import PersistenceSettings

__all__ = ("Shipper", "SqliteThread")

logger = logging.getLogger(__name__)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

_BODY_OPEN = b'{"events":['
_BODY_CLOSE = b"]}"


class SqliteThread:
    """Runs blocking SQLite calls in a worker thread, one at a time (a limiter of one)."""

    def __init__(self) -> None:
        self._limiter = anyio.CapacityLimiter(1)

    async def run(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Call ``fn(*args)`` off the event loop; a cancelled caller still waits for it."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)


class Shipper:
    """Ships the outbox to the backend.

    Args:
        outbox: the open outbox.
        thread: the SQLite thread every outbox call goes through.
        client: the backend client.
        settings: batch size, request size and retry settings.
        clock: time source; retry waits use its ``sleep``.
    """

    def __init__(
        self,
        outbox: Outbox,
        thread: SqliteThread,
        client: BackendClient,
        settings: PersistenceSettings,
        clock: Clock,
    ) -> None:
        self._outbox = outbox
        self._thread = thread
        self._client = client
        self._settings = settings
        self._clock = clock
        self._label = settings.outbox_name
        self._backoff = wait_random_exponential(
            multiplier=settings.retry_initial_s,
            min=settings.retry_initial_s,
            max=settings.retry_max_s,
        )
        self._cursor = 0  # the last seq taken for shipping; seq only grows (AUTOINCREMENT)
        self._ahead: list[OutboxRow] = []
        self._shipped_ranges: list[tuple[int, int]] = []
        self.shipped = 0
        self.dead_lettered = 0
        self.retries = 0

    async def ship_head(self) -> bool:
        """Ship the oldest batch not yet shipped, retrying until it is settled.

        While the batch is on the wire, the rows of the batch before it are deleted and the
        next batch is read, so the outbox's own work hides behind the backend's.

        Returns:
            False when nothing was waiting.
        """
        rows, self._ahead = self._ahead, []
        if not rows:
            await self._delete_shipped()  # idle: keep the outbox (and the backlog) exact
            rows = await self._read()
            if not rows:
                return False
        before = self._cursor
        self._cursor = rows[-1].seq
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._delete_then_read_ahead, name="persistence:read-ahead")
                await self._settle(rows)
        except BaseException:
            # Read these rows again next time (a batch sent twice is de-duplicated by id).
            self._cursor, self._ahead = before, []
            raise
        return True

    async def _read(self) -> list[OutboxRow]:
        return await self._thread.run(
            self._outbox.head,
            self._settings.batch_max,
            self._settings.request_max_kb * 1024,
            self._cursor,
        )

    async def _delete_then_read_ahead(self) -> None:
        await self._delete_shipped()
        self._ahead = await self._read()

    async def _delete_shipped(self) -> None:
        ranges, self._shipped_ranges = self._shipped_ranges, []
        if ranges:
            with anyio.CancelScope(shield=True):
                await self._thread.run(self._outbox.delete_ranges, ranges)

    async def _settle(self, rows: list[OutboxRow]) -> None:
        """Send ``rows`` until each is acknowledged or dead-lettered, in order."""
        parts: deque[list[OutboxRow]] = deque([rows])
        while parts:
            part = parts.popleft()
            try:
                await self._send(part)
            except EventRejected as exc:
                index = next((i for i, r in enumerate(part) if r.id == exc.event_id), None)
                if index is None:  # the client only raises it for an id of the batch
                    raise
                await self._dead_letter(part[index], exc)
                parts.extendleft(p for p in (part[index + 1 :], part[:index]) if p)
                continue
            except BackendRejected as exc:
                if len(part) == 1:
                    await self._dead_letter(part[0], exc)
                else:
                    # No event named: halve until the refused ones are alone.
                    mid = len(part) // 2
                    parts.extendleft((part[mid:], part[:mid]))
                continue
            # Acknowledged: the rows are deleted while the next batch is on the wire.
            self._shipped_ranges.append((part[0].seq, part[-1].seq))
            self.shipped += len(part)
            EVENTS_SHIPPED.labels(self._label).inc(len(part))

    async def _send(self, part: list[OutboxRow]) -> None:
        body = b"".join((_BODY_OPEN, ",".join(r.body for r in part).encode(), _BODY_CLOSE))
        ids = frozenset(r.id for r in part)
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_retryable),
            wait=self._wait,
            sleep=self._clock.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                started = self._clock.monotonic()
                try:
                    await self._client.post_batch(body, ids)
                finally:
                    BATCH_SECONDS.labels(self._label).observe(self._clock.monotonic() - started)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, BackendUnavailable) and exc.retry_after is not None:
            # Honour the backend's Retry-After, within our own longest wait.
            return min(exc.retry_after, self._settings.retry_max_s)
        return float(self._backoff(state))

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        kind = "other"
        if isinstance(exc, BackendUnavailable):
            kind = str(exc.status) if exc.status is not None else exc.kind
        self.retries += 1
        SHIP_RETRIES.labels(self._label, kind).inc()
        logger.warning(
            "backend batch failed; retrying",
            extra={
                "kind": kind,
                "attempt": state.attempt_number,
                "wait_s": round(state.upcoming_sleep, 3),
                "error": str(exc),
            },
        )

    async def _dead_letter(self, row: OutboxRow, exc: BackendRejected) -> None:
        with anyio.CancelScope(shield=True):
            await self._thread.run(
                lambda: self._outbox.dead_letter(
                    row, status=exc.status, reason=exc.reason, now=self._clock.now()
                )
            )
        self.dead_lettered += 1
        EVENTS_DEAD_LETTERED.labels(self._label, "rejected").inc()
        logger.error(
            "backend refused an event; moved to the dead-letter table",
            extra={"event_id": row.id, "status": exc.status},
        )
