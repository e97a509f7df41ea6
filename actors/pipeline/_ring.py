"""A bounded audio buffer that drops the oldest frames under pressure and counts them.

Audio that a slow consumer cannot keep up with is worth less than fresh audio, and it must
never grow without bound; control and persistence events, by contrast, are never dropped.
"""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ("AudioRing",)


class AudioRing:
    """Single-producer, single-consumer ring of PCM chunks.

    Args:
        capacity: most chunks held; pushing past it drops the oldest.
    """

    def __init__(self, capacity: int) -> None:
        self._frames: deque[bytes] = deque(maxlen=capacity)
        self._ready = anyio.Event()
        self._closed = False
        self.dropped = 0

    def push(self, pcm: bytes) -> None:
        if self._closed:
            return
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append(pcm)
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def pop(self) -> bytes | None:
        """The oldest chunk, waiting for one; None once closed and empty."""
        while not self._frames:
            if self._closed:
                return None
            await self._ready.wait()
            self._ready = anyio.Event()
        return self._frames.popleft()
