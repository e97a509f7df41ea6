"""The questions a room actor asks at start: its conversation id and its recent history.

With a backend both go to it under ``lookup_timeout_s``; when it cannot answer, a warning is
logged and a local answer is given instead (a new id; the embedded store's messages), so a
backend outage never stops a room. Turns still waiting in the outbox are added to the history:
they are newer than anything the backend has, because the outbox ships in order.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from typing import Any

import anyio

from actors._exceptions import PersistenceError
from actors.persistence._client import BackendClient
from actors.persistence._errors import BackendUnavailable
from actors.persistence._outbox import Outbox
from actors.persistence._settings import PersistenceSettings
from actors.persistence._shipper import SqliteThread
from actors.persistence._store import EmbeddedStore

__all__ = ("Lookups", "warn_about_leftovers")

logger = logging.getLogger(__name__)


class Lookups:
    """Answers ``agent_joined`` and ``recent_messages`` for the persistence actor.

    Args:
        settings: ``backend_url`` and ``lookup_timeout_s``.
        store: the embedded store (the answer without a backend, the fallback with one).
        thread: the SQLite thread store and outbox calls go through.
    """

    def __init__(
        self, settings: PersistenceSettings, store: EmbeddedStore, thread: SqliteThread
    ) -> None:
        self._settings = settings
        self._store = store
        self._thread = thread

    async def conversation_id(
        self, client: BackendClient | None, room: str, metadata: dict[str, Any]
    ) -> str:
        """The conversation id for a room (``client`` is None while the actor is not running)."""
        if self._settings.backend_url is None:
            return await self._thread.run(self._store.ensure_conversation, room, metadata, None)
        timeout_s = self._settings.lookup_timeout_s
        try:
            with anyio.fail_after(timeout_s):
                return await _live(client).agent_joined(room, metadata, timeout_s)
        except (PersistenceError, TimeoutError) as exc:
            logger.warning(
                "backend gave no conversation id; using a local one", extra={"error": str(exc)}
            )
            return "conv_" + uuid.uuid4().hex

    async def history(
        self,
        client: BackendClient | None,
        outbox: Outbox | None,
        conversation_id: str,
        limit: int,
    ) -> list[dict[str, Any]]:
        """The last ``limit`` messages of a conversation, oldest first."""
        if limit <= 0:
            return []
        local = self._store.recent_messages
        if self._settings.backend_url is None:
            return await self._thread.run(local, conversation_id, limit)
        timeout_s = self._settings.lookup_timeout_s
        try:
            with anyio.fail_after(timeout_s):
                remote = await _live(client).recent_messages(conversation_id, limit, timeout_s)
        except (PersistenceError, TimeoutError) as exc:
            logger.warning(
                "backend gave no recent messages; using local history", extra={"error": str(exc)}
            )
            remote = await self._thread.run(local, conversation_id, limit)
        pending: list[dict[str, Any]] = []
        if outbox is not None:
            pending = await self._thread.run(outbox.pending_turns, conversation_id, limit)
        return _merge(remote, pending, limit)


def _live(client: BackendClient | None) -> BackendClient:
    if client is None:
        raise BackendUnavailable("the persistence actor is not running", kind="connection")
    return client


def _merge(
    remote: list[dict[str, Any]], pending: list[dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """Backend messages then outbox turns, without the ones the backend already has (a batch
    in flight is in both)."""
    seen = {(m["ts"], m["role"], m["content"]) for m in remote}
    merged = remote + [m for m in pending if (m["ts"], m["role"], m["content"]) not in seen]
    return merged[-limit:]


def warn_about_leftovers(settings: PersistenceSettings) -> None:
    """Without a backend, events an earlier run left in the outbox stay there: say so."""
    path = settings.outbox_path
    if not path.exists():
        return
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            (count,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return
    if count:
        logger.warning(
            "the outbox holds events for a backend, but none is configured; set "
            "[persistence] backend_url to ship them",
            extra={"events": count},
        )
