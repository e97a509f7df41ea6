"""Time as a dependency: actors, retry policies and the outbox take a ``Clock``.

Production code uses ``SYSTEM_CLOCK``; tests may pass their own.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ("SYSTEM_CLOCK", "Clock", "SystemClock")


class Clock(Protocol):
    """Wall time for records, monotonic time for durations, and a sleep."""

    def now(self) -> float:
        """Seconds since the epoch (for timestamps stored or sent)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for durations and deadlines)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
