"""The SQLite files' schemas and versions: ``PRAGMA user_version`` and forward migrations.

Each file kind (the outbox, the embedded store) has a list of migrations; migration ``n``
brings a file from version ``n - 1`` to ``n``, and the file's ``user_version`` is the number of
migrations applied. Opening a file applies the missing ones, each in its own transaction with
the version bump (so a crash leaves it at a whole version), under ``BEGIN IMMEDIATE`` with the
version read again inside (several processes open the same store). A file from before versions
existed has ``user_version`` 0, and migration 1 is the schema it already has (``IF NOT
EXISTS``): it is stamped, nothing else changes.

A file newer than this code (written by a later release, then rolled back) is refused with
``StoreTooNewError``, naming the file and both versions: an older release cannot know what a
newer one changed, and guessing could lose events. ``run`` exits 2 on it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from actors._exceptions import ConfigError

__all__ = (
    "OUTBOX_MIGRATIONS",
    "OUTBOX_SCHEMA_VERSION",
    "STORE_MIGRATIONS",
    "STORE_SCHEMA_VERSION",
    "StoreTooNewError",
    "check_not_newer",
    "migrate",
    "schema_version",
)

Migration = Sequence[str]
"""The SQL statements of one migration (``executescript`` would commit in between)."""

# A new migration is appended, never edited: files in the field are at every version so far.
# It must keep the rows (ALTER TABLE ... ADD COLUMN with a default, a new table, an index),
# since a file's events must survive an upgrade.

OUTBOX_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the schema from before versions (files without one are stamped 1 as they are)
        "CREATE TABLE IF NOT EXISTS outbox ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, conversation_id TEXT NOT NULL,"
        " type TEXT NOT NULL, enqueued_at REAL NOT NULL, body TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS dead_letters ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, conversation_id TEXT NOT NULL,"
        " type TEXT NOT NULL, enqueued_at REAL NOT NULL, failed_at REAL NOT NULL, status INTEGER,"
        " reason TEXT NOT NULL, body TEXT NOT NULL)",
    ),
)
"""The outbox file's migrations (``_schema``): its version is their number."""
OUTBOX_SCHEMA_VERSION = len(OUTBOX_MIGRATIONS)

STORE_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the schema from before versions (files without one are stamped 1 as they are)
        "CREATE TABLE IF NOT EXISTS events ("
        " id TEXT PRIMARY KEY, type TEXT NOT NULL, ts REAL NOT NULL, room TEXT NOT NULL,"
        " conversation_id TEXT NOT NULL, data TEXT NOT NULL, received_seq INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS events_by_received_seq ON events (received_seq)",
        "CREATE TABLE IF NOT EXISTS conversations ("
        " id TEXT PRIMARY KEY, room TEXT NOT NULL, user_id TEXT, created_at REAL NOT NULL,"
        " metadata TEXT NOT NULL DEFAULT '{}')",
        "CREATE TABLE IF NOT EXISTS messages ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,"
        " conversation_id TEXT NOT NULL, room TEXT NOT NULL, role TEXT NOT NULL,"
        " content TEXT NOT NULL, speaker TEXT, interrupted INTEGER NOT NULL DEFAULT 0,"
        " ts REAL NOT NULL, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, seq)",
        "CREATE TABLE IF NOT EXISTS participant_events ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL,"
        " conversation_id TEXT NOT NULL, room TEXT NOT NULL, kind TEXT NOT NULL,"
        " identity TEXT NOT NULL, name TEXT, ts REAL NOT NULL, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS participants_by_conversation"
        " ON participant_events (conversation_id)",
        "CREATE TABLE IF NOT EXISTS sessions ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL,"
        " conversation_id TEXT NOT NULL, room TEXT NOT NULL, user_id TEXT,"
        " started_at REAL NOT NULL, ended_at REAL NOT NULL, duration_s REAL NOT NULL,"
        " message_count INTEGER NOT NULL, data TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS files ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL,"
        " conversation_id TEXT NOT NULL, room TEXT NOT NULL, name TEXT NOT NULL,"
        " mime_type TEXT NOT NULL, size INTEGER NOT NULL, sender TEXT, content BLOB,"
        " ts REAL NOT NULL)",
    ),
)
"""The store's migrations (``_schema``): its version is their number."""
STORE_SCHEMA_VERSION = len(STORE_MIGRATIONS)


class StoreTooNewError(ConfigError):
    """A SQLite file has a schema version newer than this release knows.

    Attributes:
        path: the file.
        found: its ``user_version``.
        known: the newest version this release knows.
    """

    def __init__(self, path: Path, found: int, known: int) -> None:
        super().__init__(
            f"{path}: schema version {found} is newer than this release's {known} (it was "
            "written by a later release); run that release again, or restore the backup "
            "taken before the upgrade (docs/operations.md, Upgrade and rollback)"
        )
        self.path = path
        self.found = found
        self.known = known


def schema_version(db: sqlite3.Connection, schema: str = "main") -> int:
    """The file's ``user_version`` (0 for a file from before versions existed)."""
    return int(db.execute(f"PRAGMA {schema}.user_version").fetchone()[0])


def check_not_newer(db: sqlite3.Connection, path: Path, known: int) -> None:
    """Refuse a file newer than ``known`` (for readers that never migrate).

    Raises:
        StoreTooNewError: it is.
    """
    found = schema_version(db)
    if found > known:
        raise StoreTooNewError(path, found, known)


def migrate(db: sqlite3.Connection, path: Path, migrations: Sequence[Migration]) -> int:
    """Bring the file to ``len(migrations)``; the connection must be in autocommit mode.

    Returns:
        The version the file was at before (0 for a new or unversioned file).

    Raises:
        StoreTooNewError: the file is newer than ``len(migrations)``.
    """
    known = len(migrations)
    before = schema_version(db)
    check_not_newer(db, path, known)
    for target in range(before + 1, known + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            current = schema_version(db)  # another process may have migrated meanwhile
            if current > known:
                raise StoreTooNewError(path, current, known)
            if current < target:
                for statement in migrations[target - 1]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return before
