"""The shipper: takes the outbox's oldest rows to the backend, one batch in flight at a time.

Shipping the head of the outbox in commit order, and deleting rows only after the backend's
200, is what keeps the two promises: order per conversation (nothing overtakes) and exactly
once (a batch may be sent twice after a lost answer or a crash, and the backend de-duplicates
by event id).

A batch that fails retryably is retried as is (tenacity: exponential backoff with jitter that
grows while the backend keeps failing, or the backend's ``Retry-After``, never shorter than
``retry_initial_s``). A final refusal that names an event dead-letters that event and ships the
rest; one that names none is bisected until the refused events are alone, so one bad event
never holds up, or takes down, its neighbours.

Retryable failures get a bounded life too: an event has ``max_attempts`` failed attempts, or
``max_failing_s`` from its first failure. A batch that outlives one of its events is bisected
the same way until the event that keeps failing stands alone. That event goes to the dead
letters only when it fails again right after the backend took other events (a half of its
batch, or a probe: the next waiting events, of other conversations when there are some, so
nothing overtakes an event of its own conversation), so the outbox head moves on. If the
backend takes nothing at all (an outage, a wrong token) the fault is not the event's: nothing
is dead-lettered, and every event starts a new life.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar, TypeVarTuple

import anyio
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

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
# 2 ** this caps the backoff's growth before retry_max_s does (no float overflow after a week).
_MAX_EXPONENT = 32


class SqliteThread:
    """Runs blocking SQLite calls in a worker thread, one at a time (a limiter of one)."""

    def __init__(self) -> None:
        self._limiter = anyio.CapacityLimiter(1)

    async def run(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Call ``fn(*args)`` off the event loop; a cancelled caller still waits for it."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)


@dataclass(slots=True)
class _Life:
    """How long one event has been failing."""

    failures: int
    since: float  # monotonic time of its first failure
    answers_then: int  # the backend's answers (2xx or a final 4xx) at its last failure
    answered_between: bool = False  # the backend answered others between its last two failures


class Shipper:
    """Ships the outbox to the backend.

    Args:
        outbox: the open outbox.
        thread: the SQLite thread every outbox call goes through.
        client: the backend client.
        settings: batch size, request size, retry settings and an event's bounded life.
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
        self._cursor = 0  # the last seq taken for shipping; seq only grows (AUTOINCREMENT)
        self._ahead: list[OutboxRow] = []
        self._ahead_read = anyio.Event()
        self._shipped_ranges: list[tuple[int, int]] = []
        self._lives: dict[int, _Life] = {}  # by seq: the failing events of the batch in hand
        self._answers = 0  # 2xx or final 4xx answers: the backend is up and judging events
        self._streak = 0  # failed requests since the last answer: the backoff's exponent
        self.shipped = 0
        self.dead_lettered = 0
        self.retries = 0

    async def ship_head(self) -> bool:
        """Ship the oldest batch not yet shipped, until each of its events is settled.

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
        # max: a probe may have shipped rows past these (see _probe).
        self._cursor = max(self._cursor, rows[-1].seq)
        self._ahead_read = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._delete_then_read_ahead, name="persistence:read-ahead")
                await self._settle(rows)
        except BaseException:
            # Read these rows again next time (a batch sent twice is de-duplicated by id).
            self._cursor, self._ahead = before, []
            raise
        finally:
            self._lives.clear()
        return True

    async def _read(self) -> list[OutboxRow]:
        return await self._thread.run(
            self._outbox.head,
            self._settings.batch_max,
            self._settings.request_max_kb * 1024,
            self._cursor,
        )

    async def _delete_then_read_ahead(self) -> None:
        try:
            await self._delete_shipped()
            self._ahead = await self._read()
        finally:
            self._ahead_read.set()

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
                await self._dead_letter(part[index], exc.status, exc.reason, "rejected")
                parts.extendleft(p for p in (part[index + 1 :], part[:index]) if p)
                continue
            except BackendRejected as exc:
                if len(part) == 1:
                    await self._dead_letter(part[0], exc.status, exc.reason, "rejected")
                else:
                    # No event named: halve until the refused ones are alone.
                    mid = len(part) // 2
                    parts.extendleft((part[mid:], part[:mid]))
                continue
            except BackendUnavailable as exc:
                await self._isolate(part, parts, exc)
                continue
            self._acknowledge(part)

    async def _isolate(
        self, part: list[OutboxRow], parts: deque[list[OutboxRow]], exc: BackendUnavailable
    ) -> None:
        """``part`` outlived the life of one of its events: halve it, or settle the event."""
        if len(part) > 1:
            mid = len(part) // 2
            parts.extendleft((part[mid:], part[:mid]))
            # A backend that answered is up: the halves go soon, unless its Retry-After asks
            # for longer. No answer (a timeout, a refused connection) may be an outage: back off.
            if exc.retry_after is not None:
                wait_s = self._retry_after_s(exc.retry_after)
            elif exc.status is not None:
                wait_s = self._settings.retry_initial_s
            else:
                wait_s = self._backoff_s()
            self._note_retry(exc, wait_s, "backend keeps failing a batch; halving it")
            await self._clock.sleep(wait_s)
            return
        row = part[0]
        life = self._lives.get(row.seq)
        if life is not None and life.answered_between:
            # It failed alone right after the backend took other events: the fault is its own.
            self._lives.pop(row.seq)
            failing_s = self._clock.monotonic() - life.since
            reason = (
                f"failed {life.failures} attempts over {failing_s:.1f} s while the backend took"
                f" other events; last: {exc}"
            )
            await self._dead_letter(row, exc.status, reason, "exhausted")
            return
        took_others = await self._probe(row, parts)
        parts.appendleft(part)
        if took_others:
            return  # one more attempt of the event tells whether the fault is its own
        if took_others is not None:
            # The backend takes nothing: the fault is not this event's. A new life for all.
            self._lives.clear()
        # Else nothing else is waiting to compare with: try it again, then look again.
        wait_s = self._backoff_s()
        self._note_retry(exc, wait_s, "backend batch failed; retrying")
        await self._clock.sleep(wait_s)

    async def _probe(self, row: OutboxRow, parts: deque[list[OutboxRow]]) -> bool | None:
        """Send the events waiting after ``row`` (which keeps failing; it is not in ``parts``)
        once: True when the backend answered (they are shipped unless refused), False when it
        failed too, None when nothing else is waiting."""
        await self._ahead_read.wait()
        if not self._ahead:
            self._ahead = await self._read()
        runs = self._probe_runs(row.conversation_id, itertools.chain(*parts, self._ahead))
        if not runs:
            return None
        probe = [r for run in runs for r in run]
        body, ids = _request(probe)
        try:
            await self._post(probe, body, ids)
        except BackendUnavailable:
            return False
        except BackendRejected:
            return True  # it judges events, so it is up; the probe's refusal is handled in turn
        shipped = {r.seq for r in probe}
        remaining = [[r for r in p if r.seq not in shipped] for p in parts]
        parts.clear()
        parts.extend(p for p in remaining if p)
        self._ahead = [r for r in self._ahead if r.seq not in shipped]
        self._cursor = max(self._cursor, probe[-1].seq)
        for run in runs:
            self._acknowledge(run)
        return True

    def _probe_runs(
        self, conversation_id: str, waiting: Iterable[OutboxRow]
    ) -> list[list[OutboxRow]]:
        """The probe: the first waiting events of other conversations (each conversation's
        earliest, so none overtakes one of its own), or, with none, of the failing event's own;
        as runs of neighbours, each deleted as one range once shipped."""
        candidates = list(waiting)
        for select in (lambda r: r.conversation_id != conversation_id, lambda _r: True):
            runs: list[list[OutboxRow]] = []
            run: list[OutboxRow] = []
            count = size = 0
            for candidate in candidates:
                if not select(candidate):
                    if run:
                        runs.append(run)
                        run = []
                    continue
                size += len(candidate.body) + 1
                if count >= self._settings.batch_max or (
                    count and size > self._settings.request_max_kb * 1024
                ):
                    break
                run.append(candidate)
                count += 1
            if run:
                runs.append(run)
            if runs:
                return runs
        return []

    async def _send(self, part: list[OutboxRow]) -> None:
        body, ids = _request(part)
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_retryable),
            stop=lambda _state: self._outlived(part),
            wait=self._wait,
            sleep=self._clock.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._post(part, body, ids)

    async def _post(self, part: list[OutboxRow], body: bytes, ids: frozenset[str]) -> None:
        """One request; keeps the failure count and the evidence that the backend is up."""
        started = self._clock.monotonic()
        try:
            await self._client.post_batch(body, ids)
        except BackendUnavailable:
            self._streak += 1
            now, answers = self._clock.monotonic(), self._answers
            for row in part:
                life = self._lives.get(row.seq)
                if life is None:
                    self._lives[row.seq] = _Life(1, now, answers)
                else:
                    life.failures += 1
                    life.answered_between = answers > life.answers_then
                    life.answers_then = answers
            raise
        except BackendRejected:
            self._streak, self._answers = 0, self._answers + 1
            raise
        finally:
            BATCH_SECONDS.labels(self._label).observe(self._clock.monotonic() - started)
        self._streak, self._answers = 0, self._answers + 1

    def _outlived(self, part: list[OutboxRow]) -> bool:
        settings, now = self._settings, self._clock.monotonic()
        for row in part:
            life = self._lives.get(row.seq)
            if life is not None and (
                life.failures >= settings.max_attempts or now - life.since >= settings.max_failing_s
            ):
                return True
        return False

    def _acknowledge(self, part: list[OutboxRow]) -> None:
        # The rows are deleted while the next batch is on the wire.
        self._shipped_ranges.append((part[0].seq, part[-1].seq))
        self.shipped += len(part)
        EVENTS_SHIPPED.labels(self._label).inc(len(part))
        for row in part:
            self._lives.pop(row.seq, None)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, BackendUnavailable) and exc.retry_after is not None:
            return self._retry_after_s(exc.retry_after)
        return self._backoff_s()

    def _retry_after_s(self, retry_after: float) -> float:
        # Honour the backend's Retry-After within our own bounds: ``Retry-After: 0`` (or a date
        # in the past) would otherwise resend at once, as fast as the backend can refuse.
        settings = self._settings
        return min(max(retry_after, settings.retry_initial_s), settings.retry_max_s)

    def _backoff_s(self) -> float:
        """Exponential backoff with full jitter over the failures since the backend last
        answered, so it keeps growing across batches and bisections during an outage."""
        initial, longest = self._settings.retry_initial_s, self._settings.retry_max_s
        exponent = min(max(self._streak - 1, 0), _MAX_EXPONENT)
        high = max(initial, min(longest, initial * 2.0**exponent))
        return random.uniform(initial, high)

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        self._note_retry(exc, state.upcoming_sleep, "backend batch failed; retrying")

    def _note_retry(self, exc: BaseException | None, wait_s: float, message: str) -> None:
        kind = "other"
        if isinstance(exc, BackendUnavailable):
            kind = str(exc.status) if exc.status is not None else exc.kind
        self.retries += 1
        SHIP_RETRIES.labels(self._label, kind).inc()
        logger.warning(
            message,
            extra={
                "kind": kind,
                "streak": self._streak,
                "wait_s": round(wait_s, 3),
                "error": str(exc),
            },
        )

    async def _dead_letter(
        self, row: OutboxRow, status: int | None, reason: str, label: str
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self._thread.run(
                lambda: self._outbox.dead_letter(
                    row, status=status, reason=reason, now=self._clock.now()
                )
            )
        self.dead_lettered += 1
        EVENTS_DEAD_LETTERED.labels(self._label, label).inc()
        message = {
            "rejected": "backend refused an event; moved to the dead-letter table",
            "exhausted": "backend kept failing one event while taking others; moved to the "
            "dead-letter table",
        }[label]
        logger.error(message, extra={"event_id": row.id, "status": status})


def _request(part: list[OutboxRow]) -> tuple[bytes, frozenset[str]]:
    body = b"".join((_BODY_OPEN, ",".join(r.body for r in part).encode(), _BODY_CLOSE))
    return body, frozenset(r.id for r in part)
