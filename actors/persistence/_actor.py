"""The persistence actor: room actors hand it events and never wait for the network.

``emit()`` is synchronous and O(1): it appends to an in-memory queue that the actor's task
commits in groups (at most ``flush_interval_ms`` or ``batch_max`` events at a time).
It never logs event contents.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import anyio
from anyio.abc import TaskStatus

from actors._clock import SYSTEM_CLOCK, Clock
from actors._events import Event
from actors._exceptions import OutboxFullError
from actors.persistence._settings import PersistenceSettings
from actors.persistence._store import EmbeddedStore

__all__ = ("PersistenceActor",)

logger = logging.getLogger(__name__)


class PersistenceActor:
    """Owns the path from ``emit(event)`` to durable storage.

    Args:
        settings: the ``[persistence]`` settings.
        store: the embedded store events are applied to.
        clock: time source.
    """

    def __init__(
        self, settings: PersistenceSettings, store: EmbeddedStore, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._queue: deque[Event] = deque()
        self._wakeup = anyio.Event()
        self._closing = False
        self._limiter = anyio.CapacityLimiter(1)
        self.committed = 0

    # -- public surface -----------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Queue an event for durable storage; never blocks.

        Raises:
            OutboxFullError: the actor is closed or its queue holds ``queue_max`` events.
        """
        if self._closing:
            raise OutboxFullError("cannot emit an event: the persistence actor is closed")
        if len(self._queue) >= self._settings.queue_max:
            raise OutboxFullError(
                "cannot emit an event: the in-memory queue is full; raise [persistence] queue_max"
            )
        self._queue.append(event)
        if len(self._queue) >= self._settings.batch_max:
            self._wakeup.set()

    @property
    def backlog(self) -> int:
        """Events emitted but not yet stored."""
        return len(self._queue)

    def close(self) -> None:
        """Stop accepting events; ``run()`` stores what it holds and returns."""
        self._closing = True
        self._wakeup.set()

    async def agent_joined(self, room: str, metadata: dict[str, Any]) -> str:
        """The conversation id for a room whose metadata has none."""
        return await anyio.to_thread.run_sync(
            self._store.ensure_conversation, room, metadata, None, limiter=self._limiter
        )

    async def recent_messages(self, conversation_id: str, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` messages of a conversation, oldest first."""
        return await anyio.to_thread.run_sync(
            self._store.recent_messages, conversation_id, limit, limiter=self._limiter
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Commit queued events until ``close()``; then commit the rest and return."""
        task_status.started()
        interval = self._settings.flush_interval_ms / 1000
        while True:
            with anyio.move_on_after(interval):
                await self._wakeup.wait()
            self._wakeup = anyio.Event()
            await self._commit_all()
            if self._closing:
                return

    # -- private ------------------------------------------------------------------------------

    async def _commit_all(self) -> None:
        while self._queue:
            batch = [
                self._queue.popleft()
                for _ in range(min(len(self._queue), self._settings.batch_max))
            ]
            try:
                with anyio.CancelScope(shield=True):
                    self.committed += await anyio.to_thread.run_sync(
                        self._store.apply, batch, limiter=self._limiter
                    )
            except Exception:
                # Put the batch back so nothing is lost; the next tick retries.
                self._queue.extendleft(reversed(batch))
                logger.exception("storing events failed; will retry")
                return
