"""Holding a reply while someone may be interrupting it, and letting it go on if they were not.

When a participant starts speaking over the agent, the agent stops between two audio chunks
(within ~100 ms) instead of talking over them. Whether it was a real interruption is decided
later, on words (``min_interrupt_s``): a real one cancels the reply; a cough or an "uh-huh"
resumes it where it stopped, as soon as the speaker stops or at the latest after
``timeout_s``. Nothing is lost while held: the chunks not yet played wait in their producer.
"""

from __future__ import annotations

import anyio

from actors._clock import Clock
from actors._metrics import FALSE_INTERRUPTIONS

__all__ = ("ReplyHold",)


class ReplyHold:
    """One reply's hold. The pipeline calls ``hold``/``release``; the audio producer ``wait``s.

    Args:
        clock: time source of the timeout.
        timeout_s: longest hold without a real interruption (0: never hold).
    """

    def __init__(self, clock: Clock, timeout_s: float) -> None:
        self._clock = clock
        self._timeout_s = timeout_s
        self._gate: anyio.Event | None = None
        self.holds = 0  # how many times this reply was held

    @property
    def held(self) -> bool:
        return self._gate is not None

    def hold(self) -> bool:
        """Stop the audio after the chunk being sent; False if holding is off or already on."""
        if self._timeout_s <= 0 or self._gate is not None:
            return False
        self._gate = anyio.Event()
        self.holds += 1
        return True

    def release(self, *, resume: bool = True) -> None:
        """Let the audio go on: a false interruption (``resume``), or the reply is over."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()
            if resume:
                FALSE_INTERRUPTIONS.inc()

    async def expire(self) -> None:
        """Release after ``timeout_s`` unless released before (run it in the owner's group)."""
        gate = self._gate
        if gate is None:
            return
        await self._clock.sleep(self._timeout_s)
        if self._gate is gate:
            self.release()

    async def wait(self) -> None:
        """Return once the reply is not held."""
        while self._gate is not None:
            await self._gate.wait()
