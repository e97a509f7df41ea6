"""The coordinator: what a daemon does through Redis, behind one object.

It owns the Redis client, the room leases and a health probe. The registry asks it
for leases (``claim``/``keep``/``release``: the registry's ``RoomLeases`` port), the daemon
reports ``health()`` in /readyz. It never starts or stops an actor itself; per-user limits
are the room hosts' (``UserLimits`` and ``GatedLlm``, beside the rooms they limit).
"""

from __future__ import annotations

import logging

import anyio
from anyio.abc import TaskStatus

from actors import SYSTEM_CLOCK, Clock, CoordinationError
from supervisor.coordination._leases import LeaseTable
from supervisor.coordination._metrics import REDIS_UP
from supervisor.coordination._redis import RedisStore
from supervisor.coordination._settings import RedisSettings

__all__ = ("Coordinator",)

logger = logging.getLogger(__name__)


class Coordinator:
    """Leases and Redis health for one daemon.

    Args:
        settings: the ``[redis]`` settings (``url`` set).
        clock: time source.
        store: the Redis calls (tests); None connects to ``settings.url``.
    """

    def __init__(
        self,
        settings: RedisSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        store: RedisStore | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._store = store or RedisStore(settings)
        self.leases = LeaseTable(settings, self._store, clock=clock)
        self._up = False
        self._down_since: float | None = clock.monotonic()
        self._last_error = "not probed yet"
        self._closed = anyio.Event()
        self._ttl_ms = int(settings.lease_ttl_s * 1000)

    # -- the registry's RoomLeases port -------------------------------------------------------

    async def claim(self, room: str) -> bool:
        """Try to take ``room``'s lease; True when this daemon may run its agent."""
        return await self.leases.claim(room)

    async def keep(self, room: str) -> str:
        """Renew ``room``'s lease until cancelled; return why it was lost."""
        return await self.leases.keep(room)

    async def release(self, room: str) -> None:
        """``room``'s agent ended: free its lease. Never raises."""
        await self.leases.release(room)

    async def lease_holder(self, room: str) -> str | None:
        """The node id holding ``room``'s lease, if any.

        Raises:
            CoordinationError: Redis failed.
        """
        return await self._store.lease_holder(room)

    # -- health -------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, object]]:
        """(Redis reachable at the last probe, details for /readyz)."""
        details: dict[str, object] = {
            "ok": self._up,
            "node_id": self.settings.node_id,
            "leases": len(self.leases.held),
        }
        if self._down_since is not None:
            details["down_for_s"] = round(self._clock.monotonic() - self._down_since, 3)
            details["error"] = self._last_error
        return self._up, details

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Probe Redis every renewal interval until ``close()`` or cancellation; then close the
        client. Each probe is the heartbeat that tells the other daemons this one is alive and
        how many leases it holds (for balance). Starts at once: an unreachable Redis shows in
        ``health()``, it does not stop the daemon."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._probe_loop, name="coordination:probe")
                task_status.started()
                await self._closed.wait()
                tg.cancel_scope.cancel("coordination closed")
        finally:
            REDIS_UP.set(0)
            with anyio.move_on_after(self.settings.timeout_s, shield=True):
                try:  # leave the live nodes at once, so no free room waits for this daemon
                    await self._store.heartbeat(self.settings.node_id, self._ttl_ms, -1)
                except CoordinationError:
                    pass  # its heartbeat expires after one lease TTL
            await self._store.aclose()

    def close(self) -> None:
        """Stop the probe and close the client (``run()`` returns)."""
        self._closed.set()

    async def _probe_loop(self) -> None:
        while True:
            await self._probe()
            await self._clock.sleep(self.settings.renew_interval_s)

    async def _probe(self) -> None:
        try:
            await self._store.heartbeat(self.settings.node_id, self._ttl_ms, len(self.leases.held))
        except CoordinationError as exc:
            if self._up or self._down_since is None:
                logger.warning(
                    "Redis unreachable; leases are kept only while they can be renewed",
                    extra={"error": type(exc.__cause__).__name__},
                )
                self._down_since = self._clock.monotonic()
            self._up = False
            self._last_error = type(exc.__cause__).__name__
            REDIS_UP.set(0)
            return
        if not self._up and self._down_since is not None and self._last_error != "not probed yet":
            logger.info("Redis reachable again")
        self._up = True
        self._down_since = None
        REDIS_UP.set(1)
