"""A bounded memory of recently seen webhook event ids."""

from __future__ import annotations

from collections import OrderedDict

__all__ = ("RecentIds",)


class RecentIds:
    """Remembers the last ``capacity`` ids; the oldest are forgotten first.

    LiveKit retries a webhook with the same event id, so a bounded memory is enough:
    replays arrive within seconds, not after ten thousand newer events.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, event_id: str) -> bool:
        """Record ``event_id``; return False if it was already there."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True

    def forget(self, event_id: str) -> None:
        """Drop ``event_id`` (an event we could not take, so its retry must be processed)."""
        self._ids.pop(event_id, None)

    def __len__(self) -> int:
        return len(self._ids)
