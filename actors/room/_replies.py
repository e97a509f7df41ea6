"""Answers on ``agent.reply``, sent by one task from a bounded queue.

Whoever answers (a command in the actor's task, a file reader) only queues the reply, so a
slow publish never holds up the room, and a flood of requests cannot start a flood of sends:
beyond ``capacity`` queued replies, new ones are dropped and counted.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from livekit import rtc

from actors._metrics import DATA_MESSAGES

__all__ = ("TOPIC_REPLY", "ReplySender")

logger = logging.getLogger(__name__)

TOPIC_REPLY = "agent.reply"


class ReplySender:
    """Publishes queued replies to their senders, in order, until ``close`` and drained."""

    def __init__(self, room: rtc.Room, capacity: int = 64) -> None:
        self._room = room
        self._send, self._receive = anyio.create_memory_object_stream[tuple[str, str]](capacity)
        self.done = anyio.Event()
        """Set when ``run`` has returned (every queued reply sent, or it was cancelled)."""

    def reply(self, identity: str, payload: dict[str, Any]) -> None:
        """Queue ``payload`` for ``identity`` (``""``: everyone); never blocks."""
        try:
            self._send.send_nowait((identity, json.dumps(payload)))
        except anyio.WouldBlock:
            DATA_MESSAGES.labels(topic=TOPIC_REPLY, result="dropped").inc()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def close(self) -> None:
        """No more replies: ``run`` returns once the queued ones are sent."""
        self._send.close()

    async def run(self) -> None:
        try:
            await self._send_all()
        finally:
            self.done.set()

    async def _send_all(self) -> None:
        with self._send, self._receive:  # a cancelled run closes both ends
            async for identity, text in self._receive:
                try:
                    await self._room.local_participant.publish_data(
                        text,
                        reliable=True,
                        topic=TOPIC_REPLY,
                        destination_identities=[identity] if identity else [],
                    )
                except Exception as exc:  # the sender may have left; nothing else to do
                    logger.warning(
                        "could not send a data reply", extra={"error": type(exc).__name__}
                    )
