"""The dead letters of every outbox in a data directory, for ``voice-supervisor dead-letters``:
read them, or put them back in their outbox to be shipped again.

It works on the files, whether their daemon runs or not: SQLite serialises the writes, a
running daemon notices the rows put back (``Outbox.refresh``) and ships them within a few
seconds, and a stopped one ships them at its next start. A replayed event goes to the end of
its outbox: it is sent after the events committed since it failed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from actors.persistence._outbox import _COLUMNS, _DEAD_COLUMNS
from actors.persistence._schema import OUTBOX_SCHEMA_VERSION, check_not_newer

__all__ = ("DeadLetter", "outbox_files", "read_dead_letters", "replay_dead_letters")

_BUSY_TIMEOUT_MS = 10_000
_ID_CHUNK = 500


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event an outbox gave up on, with the reason."""

    outbox: str
    id: str
    conversation_id: str
    type: str
    enqueued_at: float
    failed_at: float
    status: int | None
    reason: str
    body: str


def outbox_files(data_dir: Path) -> list[Path]:
    """The outbox files of ``data_dir`` (``outbox-<outbox_name>.sqlite3``: the daemon's, and
    ``outbox-worker-<n>.sqlite3`` for each room worker), sorted by name."""
    return sorted(data_dir.glob("outbox-*.sqlite3"))


def read_dead_letters(data_dir: Path) -> list[DeadLetter]:
    """Every dead letter of every outbox in ``data_dir``, by outbox, oldest first."""
    letters: list[DeadLetter] = []
    for path in outbox_files(data_dir):
        with _open(path) as db:
            if db is None:
                continue
            rows = db.execute(f"SELECT {_DEAD_COLUMNS} FROM dead_letters ORDER BY seq")
            letters.extend(DeadLetter(path.name, *row) for row in rows)
    return letters


def replay_dead_letters(
    data_dir: Path, ids: Collection[str] | None, now: float
) -> tuple[int, set[str]]:
    """Move dead letters back into their outbox (one transaction per file).

    Args:
        data_dir: the directory of the outboxes.
        ids: the event ids to replay; None replays every dead letter.
        now: the time the replayed rows are committed at.

    Returns:
        How many events were put back, and the ids asked for that no outbox has.

    Raises:
        sqlite3.Error: an outbox could not be written (its transaction is rolled back).
    """
    wanted = None if ids is None else set(ids)
    replayed = 0
    found: set[str] = set()
    for path in outbox_files(data_dir):
        with _open(path) as db:
            if db is None:
                continue
            db.execute("BEGIN IMMEDIATE")
            try:
                seqs = _matching(db, wanted, found)
                for start in range(0, len(seqs), _ID_CHUNK):
                    chunk = seqs[start : start + _ID_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    db.execute(
                        f"INSERT INTO outbox ({_COLUMNS}) SELECT id, conversation_id, type, ?, body"
                        f" FROM dead_letters WHERE seq IN ({marks}) ORDER BY seq",
                        (now, *chunk),
                    )
                    db.execute(f"DELETE FROM dead_letters WHERE seq IN ({marks})", chunk)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            replayed += len(seqs)
    missing = set() if wanted is None else wanted - found
    return replayed, missing


def _matching(db: sqlite3.Connection, wanted: set[str] | None, found: set[str]) -> list[int]:
    rows = db.execute("SELECT seq, id FROM dead_letters ORDER BY seq").fetchall()
    seqs = [seq for seq, event_id in rows if wanted is None or event_id in wanted]
    found.update(event_id for _, event_id in rows if wanted is None or event_id in wanted)
    return seqs


@contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection | None]:
    """The outbox file, or None when it has no outbox tables (nothing to read there)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        check_not_newer(db, path, OUTBOX_SCHEMA_VERSION)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        yield db if {"outbox", "dead_letters"} <= tables else None
