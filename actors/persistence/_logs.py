"""Log lines for faults that repeat: logged once per interval with a count of the lines held
back, so a full disk retried with backoff, or a room that keeps emitting a bad event, never
floods the log."""

from __future__ import annotations

from actors._clock import Clock

__all__ = ("LogLimiter",)


class LogLimiter:
    """Lets a repeated log line through at most once per ``interval_s``.

    Args:
        interval_s: shortest time between two lines that get through.
        clock: its ``monotonic`` measures the interval.
    """

    def __init__(self, interval_s: float, clock: Clock) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._next_at: float | None = None
        self._held = 0

    def allow(self) -> int | None:
        """None: hold this line back (it is counted). Otherwise log it: the value is how many
        lines were held back since the last one that got through."""
        now = self._clock.monotonic()
        if self._next_at is not None and now < self._next_at:
            self._held += 1
            return None
        self._next_at = now + self._interval_s
        held, self._held = self._held, 0
        return held

    def reset(self) -> None:
        """The fault is over: the next occurrence is logged at once."""
        self._next_at = None
        self._held = 0
