"""A small distributed lock: one holder at a time across every daemon (e.g. for rooms with
several agents that must not speak over each other, or one-off maintenance).

The lock is a key with a random owner token and a TTL: taken with SET NX PX, given back with
compare-and-delete, so a holder that outlived its TTL never frees someone else's lock. It is
not renewed: choose a TTL longer than the work it guards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from actors import SYSTEM_CLOCK, Clock, CoordinationError
from supervisor.coordination._redis import RedisStore

__all__ = ("distributed_lock",)

_FIRST_WAIT_S = 0.01
_MAX_WAIT_S = 0.25


@asynccontextmanager
async def distributed_lock(
    store: RedisStore,
    name: str,
    *,
    ttl_s: float,
    wait_s: float,
    clock: Clock = SYSTEM_CLOCK,
) -> AsyncIterator[None]:
    """Hold the lock ``name`` for the body of an ``async with``.

    Args:
        store: the Redis calls.
        name: what the lock guards (any string).
        ttl_s: the lock frees itself after this long, even if its holder died.
        wait_s: how long to wait for a busy lock.

    Raises:
        CoordinationError: the lock stayed busy for ``wait_s`` (``retryable``), or Redis failed.
    """
    token = uuid.uuid4().hex
    ttl_ms = max(1, int(ttl_s * 1000))
    deadline = clock.monotonic() + wait_s
    pause = _FIRST_WAIT_S
    while not await store.take_lock(name, token, ttl_ms):
        left = deadline - clock.monotonic()
        if left <= 0:
            raise CoordinationError(
                f"lock still busy after {wait_s}s of waiting; raise wait_s or shorten the work",
                retryable=True,
            )
        await clock.sleep(min(pause, left))
        pause = min(pause * 2, _MAX_WAIT_S)
    try:
        yield
    finally:
        with anyio.move_on_after(ttl_s, shield=True):
            try:
                await store.drop_lock(name, token)
            except CoordinationError:
                pass  # the lock frees itself after ttl_s
