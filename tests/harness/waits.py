"""Waiting on conditions with a deadline.

Where the thing awaited lives in another process (the LiveKit server, the daemon under test,
a SQLite file), there is no event to subscribe to, so ``poll_until`` re-checks a condition at
a short interval and fails loudly at the deadline. It never stands in for an event that exists.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import anyio

POLL_INTERVAL_S = 0.02


async def poll_until(check: Callable[[], Any], *, deadline_s: float, what: str) -> Any:
    """Return the first truthy value of ``check()`` (awaited if it is a coroutine).

    Raises:
        TimeoutError: naming ``what`` and the last value seen, after ``deadline_s``.
    """
    last: object = None
    with anyio.move_on_after(deadline_s):
        while True:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            last = value
            await anyio.sleep(POLL_INTERVAL_S)
    raise TimeoutError(f"timed out after {deadline_s}s waiting for {what} (last value: {last!r})")
