"""A clock for tests: time moves only when something sleeps, and at once (an autojump clock),
so what a component does over seconds of its time runs in microseconds and never depends on
how loaded the machine is."""

from __future__ import annotations

import anyio

__all__ = ("JumpClock",)


class JumpClock:
    """``actors.Clock`` whose ``sleep(s)`` moves time ``s`` ahead and yields once."""

    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()
