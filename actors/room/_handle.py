"""What the owner of a running room actor holds (``RoomHandle``)."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from actors.room._messages import RoomMessage, StopRequested

__all__ = ("RoomHandle",)


@dataclass(frozen=True, slots=True)
class RoomHandle:
    """What the owner of a running actor holds: a way to ask it to stop, and its identity."""

    room: str
    conversation_id: str
    _inbox: MemoryObjectSendStream[RoomMessage]
    _stop: anyio.Event

    def request_stop(self, reason: str) -> None:
        """Ask the actor to finish; non-blocking and safe to call more than once."""
        try:
            self._inbox.send_nowait(StopRequested(reason))
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        self._stop.set()
