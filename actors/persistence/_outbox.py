"""The durable outbox: one SQLite file (WAL) per process, holding events until the backend
has acknowledged them.

Events are appended in group commits, one transaction per batch, and read back in commit
order (``seq``, AUTOINCREMENT, so it never goes back even when the table empties). A row leaves
the outbox only after the backend's 200, or into ``dead_letters`` after a final refusal.
Each row keeps the event's contract JSON, so a request body is a concatenation of rows. An
event the database cannot take goes to ``dead_letters`` alone: it never holds up its batch.

Its schema version is ``PRAGMA user_version``, brought forward at open (``_schema``).

A process owns its file through an exclusive ``flock`` on a sibling ``.lock`` file, which the
kernel releases when the process dies (even by ``kill -9``). At open, outbox files of the same
directory whose lock is free (a process that is gone for good, e.g. a worker that was removed)
are adopted: their rows move into this outbox, after its own.

Every method blocks; the actor calls them through ``anyio.to_thread`` with a limiter of one,
so the connection is never used by two threads at once. Nothing here logs event contents.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors._events import Event
from actors.persistence import _schema
from actors.persistence._encode import serialise, storable_body, storable_text
from actors.persistence._errors import OutboxLockedError
from actors.persistence._json import loads

__all__ = ("Outbox", "OutboxRow", "is_disk_full")

logger = logging.getLogger(__name__)

_COLUMNS = "id, conversation_id, type, enqueued_at, body"
_DEAD_COLUMNS = "id, conversation_id, type, enqueued_at, failed_at, status, reason, body"
_REASON_MAX = 500
# A sibling adopting orphans holds each lock only while it looks (milliseconds); a live owner
# holds it for good.
_OWN_LOCK_WAIT_S = 5.0
_OWN_LOCK_POLL_S = 0.01
# pending_turns() scans at most this many of the newest rows. Without an index (which would cost
# every append a third of its time) a scan from the newest row finds an active conversation's
# turns at once; the bound caps the cost for a conversation with none during a long outage.
_PENDING_SCAN_ROWS = 100_000
# After a checkpoint the WAL file is truncated to this size, so a burst does not keep its peak.
_WAL_LIMIT_BYTES = 16 * 1024 * 1024
# Errors of one event's values (text that is not UTF-8, a number SQLite cannot hold, a wrong
# type), as opposed to the database's own (disk full, I/O error, locked, corrupt), which any
# event would meet and which are retried instead.
_EVENT_FAULTS = (sqlite3.DataError, sqlite3.IntegrityError, sqlite3.ProgrammingError)
_STORAGE_FAULTS = (sqlite3.DatabaseError, OSError, MemoryError)


def is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's ``database or disk is full`` (SQLITE_FULL) and for ENOSPC."""
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and code & 0xFF == sqlite3.SQLITE_FULL  # extended codes too
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def _is_storage_fault(exc: Exception) -> bool:
    return isinstance(exc, _STORAGE_FAULTS) and not isinstance(exc, _EVENT_FAULTS)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One event waiting in the outbox."""

    seq: int
    id: str
    body: str
    conversation_id: str = ""


class Outbox:
    """A handle on this process's outbox file (open with ``Outbox.open``).

    Attributes:
        path: the database file.
        count: rows waiting (kept in memory, so reading it costs nothing).
        oldest_enqueued_at: commit time of the oldest waiting row, or None when empty.
        used_bytes: bytes of the database in use (waiting rows, dead letters, free pages left
            out), measured after every write.
    """

    def __init__(self, path: Path, db: sqlite3.Connection, lock_fd: int) -> None:
        self.path = path
        self._db = db
        self._lock_fd = lock_fd
        self._page_size: int = db.execute("PRAGMA page_size").fetchone()[0]
        self._data_version: int = db.execute("PRAGMA data_version").fetchone()[0]
        self.count = 0
        self.oldest_enqueued_at: float | None = None
        self.used_bytes = 0
        self._recount()

    @classmethod
    def open(
        cls, path: Path, *, synchronous: str = "normal", lock_wait_s: float = _OWN_LOCK_WAIT_S
    ) -> Outbox:
        """Lock and open the outbox file, creating it, and adopt orphaned siblings.

        Args:
            path: the outbox file.
            synchronous: SQLite ``synchronous`` (``normal`` or ``full``).
            lock_wait_s: how long a held lock is waited for before giving up.

        Raises:
            OutboxLockedError: another live process holds this outbox.
            StoreTooNewError: it, or an orphan to adopt, is newer than this release.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock_own(path, lock_wait_s)
        if lock_fd is None:
            raise OutboxLockedError(
                "cannot open the outbox: another running process uses it; give each process "
                "its own [persistence] outbox_name"
            )
        db: sqlite3.Connection | None = None
        try:
            db = _connect(path, synchronous)
            _schema.migrate(db, path, _schema.OUTBOX_MIGRATIONS)
            for sibling in sorted(path.parent.glob("outbox-*.sqlite3")):
                if sibling != path:
                    _adopt(db, sibling)
            return cls(path, db, lock_fd)
        except BaseException:
            if db is not None:
                db.close()
            os.close(lock_fd)
            raise

    def close(self) -> None:
        """Close the database and release the lock (idempotent)."""
        if self._lock_fd < 0:
            return
        self._db.close()
        os.close(self._lock_fd)
        self._lock_fd = -1

    # -- writes -------------------------------------------------------------------------------

    def append(
        self, events: Sequence[Event], now: float, bodies: Sequence[str] | None = None
    ) -> int:
        """Commit events in one transaction, in order.

        An event the database cannot take (text that is not UTF-8, a value SQLite refuses)
        spoils only itself: the batch is halved until that event stands alone, it goes to
        ``dead_letters`` with the reason, and the others are committed, in order.

        Args:
            events: the events, in emit order.
            now: the commit time.
            bodies: the events' contract JSON (``serialise``), when the caller made it already;
                without it, an event that is not JSON data goes to ``dead_letters`` at once.

        Returns:
            How many events went to ``dead_letters``.

        Raises:
            sqlite3.Error: the database cannot be written (disk full, I/O error, locked);
                nothing is committed, and appending the same events again is safe.
        """
        rows: list[tuple[Event, str]] = []
        dead: list[tuple[Any, ...]] = []
        for index, event in enumerate(events):
            if bodies is not None:
                rows.append((event, bodies[index]))
                continue
            try:
                rows.append((event, serialise(event)))
            except (TypeError, ValueError) as exc:
                dead.append(_dead_row(event, now, f"not JSON-serialisable: {type(exc).__name__}"))
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            committed = self._insert_isolating(rows, now, dead)
            if dead:
                db.executemany(
                    f"INSERT INTO dead_letters ({_DEAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    dead,
                )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if committed and self.count == 0:
            self.oldest_enqueued_at = now
        self.count += committed
        self._measure()
        return len(dead)

    def _insert_isolating(
        self, rows: list[tuple[Event, str]], now: float, dead: list[tuple[Any, ...]]
    ) -> int:
        """Insert ``rows`` under a savepoint; if one of them spoils the insert, halve until it
        stands alone and add it to ``dead``. Returns how many rows were inserted."""
        if not rows:
            return 0
        db = self._db
        db.execute("SAVEPOINT part")
        try:
            db.executemany(
                f"INSERT INTO outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                ((e.id, e.conversation_id, str(e.type), now, body) for e, body in rows),
            )
        except Exception as exc:
            if _is_storage_fault(exc):
                raise  # SQLite may have rolled back the whole transaction (SQLITE_FULL does)
            db.execute("ROLLBACK TO part")
            db.execute("RELEASE part")
            if len(rows) == 1:
                reason = f"cannot be stored in the outbox: {type(exc).__name__}"
                dead.append(_dead_row(rows[0][0], now, reason))
                return 0
            mid = len(rows) // 2
            first = self._insert_isolating(rows[:mid], now, dead)
            return first + self._insert_isolating(rows[mid:], now, dead)
        db.execute("RELEASE part")
        return len(rows)

    def delete_ranges(self, ranges: Sequence[tuple[int, int]]) -> int:
        """Remove the rows of each ``(first_seq, last_seq)`` range (the backend has them), in
        one transaction; returns how many."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            deleted = 0
            for first_seq, last_seq in ranges:
                deleted += db.execute(
                    "DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (first_seq, last_seq)
                ).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._forget(deleted)
        self._measure()
        return deleted

    def dead_letter(self, row: OutboxRow, *, status: int | None, reason: str, now: float) -> None:
        """Move one row to ``dead_letters`` with the reason it was refused."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            moved = db.execute(
                f"INSERT INTO dead_letters ({_DEAD_COLUMNS}) SELECT id, conversation_id, type,"
                " enqueued_at, ?, ?, ?, body FROM outbox WHERE seq = ?",
                (now, status, reason[:_REASON_MAX], row.seq),
            ).rowcount
            db.execute("DELETE FROM outbox WHERE seq = ?", (row.seq,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._forget(moved)
        self._measure()

    def refresh(self) -> bool:
        """Count the rows again if another process wrote to this file since we last looked
        (``voice-supervisor dead-letters replay`` puts rows back into a running daemon's
        outbox). Returns True when it had."""
        version: int = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return False
        self._data_version = version
        self._recount()
        return True

    def _forget(self, removed: int) -> None:
        self.count -= removed
        if self.count <= 0:
            self.count = 0
            self.oldest_enqueued_at = None

    def _recount(self) -> None:
        row = self._db.execute("SELECT COUNT(*), MIN(enqueued_at) FROM outbox").fetchone()
        self.count, self.oldest_enqueued_at = row[0], row[1]
        self._measure()

    def _measure(self) -> None:
        # Pages in use, not the file's size: SQLite keeps freed pages in the file for reuse, so
        # the file never shrinks as the backlog is shipped.
        pages: int = self._db.execute("PRAGMA page_count").fetchone()[0]
        free: int = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        self.used_bytes = (pages - free) * self._page_size

    # -- reads --------------------------------------------------------------------------------

    def head(self, limit: int, max_bytes: int, after_seq: int = 0) -> list[OutboxRow]:
        """The oldest rows after ``after_seq``, in commit order: at most ``limit`` rows and
        about ``max_bytes`` of JSON (at least one row when there is one)."""
        rows: list[OutboxRow] = []
        size = 0
        # Iterating the cursor fetches lazily, so one huge event does not pull in its followers.
        for seq, event_id, body, enqueued_at, conversation_id in self._db.execute(
            "SELECT seq, id, body, enqueued_at, conversation_id FROM outbox WHERE seq > ?"
            " ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ):
            size += len(body) + 1
            if rows and size > max_bytes:
                break
            if not rows:
                self.oldest_enqueued_at = enqueued_at
            rows.append(OutboxRow(seq, event_id, body, conversation_id))
        return rows

    def pending_turns(self, conversation_id: str, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` turn events of a conversation still waiting here, oldest first,
        as the contract's message objects (none once closed)."""
        if self._lock_fd < 0:
            return []
        rows = self._db.execute(
            "SELECT body FROM outbox WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM outbox) - ?"
            " AND conversation_id = ? AND type = 'turn' ORDER BY seq DESC LIMIT ?",
            (_PENDING_SCAN_ROWS, conversation_id, limit),
        ).fetchall()
        messages = []
        for (body,) in reversed(rows):
            event = loads(body)
            data = event["data"]
            messages.append(
                {
                    "role": data.get("role", ""),
                    "content": data.get("content", ""),
                    "ts": event["ts"],
                    "speaker": data.get("speaker"),
                    "interrupted": bool(data.get("interrupted", False)),
                }
            )
        return messages

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead-lettered event with its reason, oldest first (none once closed)."""
        if self._lock_fd < 0:
            return []
        rows = self._db.execute(f"SELECT {_DEAD_COLUMNS} FROM dead_letters ORDER BY seq").fetchall()
        keys = _DEAD_COLUMNS.split(", ")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def disk_bytes(self) -> int:
        """Bytes on disk: the database file and its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.stat(f"{self.path}{suffix}").st_size
            except FileNotFoundError:
                pass
        return total


def _dead_row(event: Event, now: float, reason: str) -> tuple[Any, ...]:
    """A ``dead_letters`` row for an event that may hold anything, even text that is not UTF-8."""
    return (
        storable_text(event.id),
        storable_text(event.conversation_id),
        storable_text(str(event.type)),
        now,
        now,
        None,
        reason,
        storable_body(event),
    )


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
    db.execute("PRAGMA busy_timeout=10000")
    db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT_BYTES}")
    return db


def _lock_own(path: Path, wait_s: float) -> int | None:
    """Lock our own file. Another process starting in the same directory may hold our lock for a
    moment while it checks whether our file is an orphan, so wait a little before giving up."""
    deadline = time.monotonic() + wait_s
    while True:
        fd = _try_lock(path)
        if fd is not None or time.monotonic() >= deadline:
            return fd
        time.sleep(_OWN_LOCK_POLL_S)  # a worker thread: nothing else waits on it


def _try_lock(path: Path) -> int | None:
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _adopt(db: sqlite3.Connection, sibling: Path) -> None:
    """Move the rows of an orphaned outbox into ours, in its commit order."""
    fd = _try_lock(sibling)
    if fd is None:
        return  # a live process owns it
    try:
        db.execute("ATTACH DATABASE ? AS orphan", (str(sibling),))
        try:
            tables = {
                r[0] for r in db.execute("SELECT name FROM orphan.sqlite_master WHERE type='table'")
            }
            if not {"outbox", "dead_letters"} <= tables:
                return
            found = _schema.schema_version(db, "orphan")
            if found > _schema.OUTBOX_SCHEMA_VERSION:  # its rows may not mean what ours do
                raise _schema.StoreTooNewError(sibling, found, _schema.OUTBOX_SCHEMA_VERSION)
            # With WAL the two files commit separately; a crash in between can only copy a row
            # twice, never lose it, and the backend de-duplicates by event id.
            db.execute("BEGIN IMMEDIATE")
            try:
                moved = db.execute(
                    f"INSERT INTO main.outbox ({_COLUMNS}) SELECT {_COLUMNS}"
                    " FROM orphan.outbox ORDER BY seq"
                ).rowcount
                db.execute(
                    f"INSERT INTO main.dead_letters ({_DEAD_COLUMNS}) SELECT {_DEAD_COLUMNS}"
                    " FROM orphan.dead_letters ORDER BY seq"
                )
                db.execute("DELETE FROM orphan.outbox")
                db.execute("DELETE FROM orphan.dead_letters")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if moved:
                logger.info("adopted an orphaned outbox", extra={"events": moved})
        finally:
            db.execute("DETACH DATABASE orphan")
    finally:
        os.close(fd)
