"""The embedded store: one SQLite database (WAL) holding conversations, messages,
participant events, sessions and files.

It applies contract events idempotently (the ``events`` table remembers every id it has seen),
so the same batch can be applied twice without duplicates. It is used directly when no backend
URL is configured, by the reference backend, and by the ``sessions``/``messages`` CLI commands.

Its schema version is the file's ``PRAGMA user_version`` (``STORE_SCHEMA_VERSION``), brought
forward at open by ``_schema.migrate``; a store newer than this release is refused.

All methods are synchronous and must run off the event loop (``anyio.to_thread``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from actors._events import Event, EventType
from actors.persistence._json import dumps
from actors.persistence._schema import STORE_MIGRATIONS, migrate

__all__ = ("EmbeddedStore",)

logger = logging.getLogger(__name__)

# Ids per "SELECT ... IN (...)" (well below SQLite's limit on bound parameters).
_ID_CHUNK = 500
_CACHE_KB = 32 * 1024
_CHECKPOINT_PAGES = 10_000
_WAL_LIMIT_BYTES = 64 * 1024 * 1024
_TOOL_ROLES = {
    EventType.TOOL_CALL: "tool_call",
    EventType.TOOL_RESULT: "tool",
    EventType.TOOL_ERROR: "tool",
}


class EmbeddedStore:
    """A thread-safe handle on the embedded SQLite database.

    Args:
        path: the database file; its parent directory is created.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Event ids are random, so their index is written all over; a bigger page cache keeps
        # more of it in memory (measured: a tenth less CPU per event at 100,000 events).
        self._db.execute(f"PRAGMA cache_size=-{_CACHE_KB}")
        # Checkpoint every ~40 MB of WAL instead of ~4 MB: an index page touched by many
        # transactions is copied back once per checkpoint (measured: a quarter less CPU per
        # event); the WAL file is cut back to the limit afterwards.
        self._db.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
        self._db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT_BYTES}")
        self._db.execute("PRAGMA journal_mode=WAL")
        try:
            migrate(self._db, path, STORE_MIGRATIONS)
        except BaseException:
            self._db.close()
            raise
        self._known_conversations: set[str] = set()
        self._seq = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes -------------------------------------------------------------------------------

    def apply(self, events: Sequence[Event]) -> int:
        """Apply events in order, in one transaction; already seen ids are skipped.

        Returns:
            The number of events that were new.
        """
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                # Read under the write lock, not cached: room workers are separate processes
                # writing to the same store, and received_seq must follow commit order.
                self._seq = db.execute(
                    "SELECT COALESCE(MAX(received_seq), 0) FROM events"
                ).fetchone()[0]
                fresh = self._fresh(events)
                conversations = self._insert(fresh)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            # Only once committed: a rolled-back conversation must be inserted again.
            self._known_conversations.update(conversations)
        return len(fresh)

    def apply_or_drop(self, events: Sequence[Event]) -> int:
        """``apply``, leaving out the events the store cannot take (not JSON data, a bad file
        payload) instead of refusing the whole batch.

        Returns:
            How many events were left out (each one logged with its id).

        Raises:
            sqlite3.OperationalError: the database is locked or the disk is full; nothing is
                lost, and applying the same events again is harmless.
        """
        try:
            self.apply(events)
            return 0
        except sqlite3.OperationalError:
            raise
        except Exception:
            pass  # one event spoils the batch: find it below
        dropped = 0
        for event in events:
            try:
                self.apply([event])
            except sqlite3.OperationalError:
                raise
            except Exception:
                dropped += 1
                logger.exception("the store refused an event", extra={"event_id": event.id})
        return dropped

    def _fresh(self, events: Sequence[Event]) -> list[Event]:
        """The events whose id is new (first occurrence only), in order."""
        seen: set[str] = set()
        for start in range(0, len(events), _ID_CHUNK):
            chunk = [event.id for event in events[start : start + _ID_CHUNK]]
            marks = ",".join("?" * len(chunk))
            seen.update(
                row[0]
                for row in self._db.execute(f"SELECT id FROM events WHERE id IN ({marks})", chunk)
            )
        fresh = []
        for event in events:
            if event.id not in seen:
                seen.add(event.id)
                fresh.append(event)
        return fresh

    def _insert(self, fresh: list[Event]) -> dict[str, None]:
        """Insert new events with executemany (the bulk of them are turns); returns the
        conversations created."""
        rows = []
        turns = []
        others = []
        conversations: dict[str, tuple[Any, ...]] = {}
        known = self._known_conversations
        for event in fresh:
            self._seq += 1
            data = event.data
            data_json = dumps(_without_content(event))
            cid = event.conversation_id
            kind = str(event.type)
            rows.append((event.id, kind, event.ts, event.room, cid, data_json, self._seq))
            if cid not in known and cid not in conversations:
                conversations[cid] = (cid, event.room, data.get("user_id"), event.ts)
            if event.type is EventType.TURN or event.type in _TOOL_ROLES:
                # Tool calls and results are messages too: the history a model sees after a
                # restart or a takeover must hold them (each result after its call).
                role = _TOOL_ROLES.get(event.type) or str(data.get("role", ""))
                content = data.get("arguments" if role == "tool_call" else "content", "")
                turns.append(
                    (
                        event.id,
                        cid,
                        event.room,
                        role,
                        str(content),
                        data.get("speaker"),
                        int(bool(data.get("interrupted", False))),
                        event.ts,
                        data_json,
                    )
                )
            else:
                others.append(event)
        db = self._db
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany(
            "INSERT OR IGNORE INTO conversations VALUES (?, ?, ?, ?, '{}')", conversations.values()
        )
        db.executemany(
            "INSERT INTO messages (event_id, conversation_id, room, role, content, speaker,"
            " interrupted, ts, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            turns,
        )
        for event in others:
            self._apply_one(event)
        return dict.fromkeys(conversations)

    def ensure_conversation(
        self, room: str, metadata: dict[str, Any], conversation_id: str | None = None
    ) -> str:
        """Return the conversation id for a room joining, creating the conversation if new."""
        cid = conversation_id or "conv_" + uuid.uuid4().hex
        user_id = metadata.get("user_id")
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO conversations VALUES (?, ?, ?, strftime('%s','now'), ?)",
                (cid, room, None if user_id is None else str(user_id), json.dumps(metadata)),
            )
        return cid

    def _apply_one(self, event: Event) -> None:
        """The rarer event types, one at a time (turns go through ``_insert``)."""
        data = event.data
        db = self._db
        match event.type:
            case EventType.PARTICIPANT_CONNECTED | EventType.PARTICIPANT_DISCONNECTED:
                db.execute(
                    "INSERT INTO participant_events (event_id, conversation_id, room, kind,"
                    " identity, name, ts, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.id,
                        event.conversation_id,
                        event.room,
                        str(event.type),
                        str(data.get("identity", "")),
                        data.get("name"),
                        event.ts,
                        dumps(data),
                    ),
                )
            case EventType.SESSION:
                db.execute(
                    "INSERT INTO sessions (event_id, conversation_id, room, user_id, started_at,"
                    " ended_at, duration_s, message_count, data)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.id,
                        event.conversation_id,
                        event.room,
                        data.get("user_id"),
                        float(data.get("started_at", event.ts)),
                        float(data.get("ended_at", event.ts)),
                        float(data.get("duration_s", 0.0)),
                        int(data.get("message_count", 0)),
                        dumps(data),
                    ),
                )
            case EventType.FILE:
                content = data.get("content_b64")
                db.execute(
                    "INSERT INTO files (event_id, conversation_id, room, name, mime_type, size,"
                    " sender, content, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.id,
                        event.conversation_id,
                        event.room,
                        str(data.get("name", "")),
                        str(data.get("mime_type", "application/octet-stream")),
                        int(data.get("size", 0)),
                        data.get("sender"),
                        None if content is None else _b64decode(str(content)),
                        event.ts,
                    ),
                )
            case _:
                pass  # agent_joined and error are kept in the events table only

    # -- reads --------------------------------------------------------------------------------

    def recent_messages(self, conversation_id: str, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` messages of a conversation, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT role, content, ts, speaker, interrupted, data FROM messages"
                " WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?",
                (conversation_id, limit),
            ).fetchall()
        return [_message(row) for row in reversed(rows)]

    def sessions(self) -> list[dict[str, Any]]:
        """Every stored session summary, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT data FROM sessions ORDER BY seq").fetchall()
        return [json.loads(row[0]) for row in rows]

    def participant_events(self, conversation_id: str) -> list[dict[str, Any]]:
        """Participant connect/disconnect events of a conversation, in arrival order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, identity, name, ts FROM participant_events"
                " WHERE conversation_id = ? ORDER BY seq",
                (conversation_id,),
            ).fetchall()
        return [{"type": r[0], "identity": r[1], "name": r[2], "ts": r[3]} for r in rows]

    def events(self, types: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Every applied event in arrival order (metadata only: file contents are left out)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, type, ts, room, conversation_id, data FROM events ORDER BY received_seq"
            ).fetchall()
        wanted = None if types is None else set(types)
        return [
            {
                "id": r[0],
                "type": r[1],
                "ts": r[2],
                "room": r[3],
                "conversation_id": r[4],
                "data": json.loads(r[5]),
            }
            for r in rows
            if wanted is None or r[1] in wanted
        ]

    def file_content(self, event_id: str) -> bytes | None:
        """The stored bytes of an uploaded file, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT content FROM files WHERE event_id = ?", (event_id,)
            ).fetchone()
        return None if row is None else row[0]


def _message(row: tuple[Any, ...]) -> dict[str, Any]:
    message = {
        "role": row[0],
        "content": row[1],
        "ts": row[2],
        "speaker": row[3],
        "interrupted": bool(row[4]),
    }
    if row[0] in ("tool_call", "tool"):
        data = json.loads(row[5])
        message["name"] = data.get("name")
        message["tool_call_id"] = data.get("call_id")
    return message


def _without_content(event: Event) -> dict[str, Any]:
    if "content_b64" not in event.data:
        return event.data
    return {k: v for k, v in event.data.items() if k != "content_b64"}


def _b64decode(text: str) -> bytes:
    import base64

    return base64.b64decode(text)
