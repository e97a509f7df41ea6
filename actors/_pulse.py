"""A signal that re-arms itself, for "something changed, look again" wake-ups.

An ``anyio.Event`` is set once for good; code that needs a wake-up per change used to replace
its Event after each ``set()``, each in its own way. ``Pulse`` is that idiom, once.
"""

from __future__ import annotations

import anyio

__all__ = ("Pulse",)


class Pulse:
    """Each ``fire()`` wakes every ``wait()`` begun before it; a wait begun after it waits for
    the next one. Check the condition, then wait (with no await in between), and loop."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait(self) -> None:
        await self._event.wait()

    def next(self) -> anyio.Event:
        """The Event the next ``fire()`` sets: take it before work during which a fire must
        not be missed, then wait on it (or ask ``is_set()``) afterwards."""
        return self._event
