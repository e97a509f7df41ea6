"""Room leases: which daemon runs a room's agent.

A lease is the key ``lease:{room}`` holding the owner's node id with a TTL (SET NX PX, in a
script that also holds off after Redis lost its data, and leaves a free room to the
least-loaded live daemons for ``balance_grace_s``, so rooms spread evenly). The owner renews
it every third of the TTL with a compare-and-extend script and releases it with
compare-and-delete. It counts its lease valid until the send time of its last successful
renewal plus the TTL, less a margin for clock drift: that is before Redis can expire the key,
so by the time another daemon can win the lease, the old owner has already stopped its agent.
Lost = taken by another node, or no successful renewal before the local validity ends (Redis
unreachable too long).

This module never starts or stops an actor: ``keep()`` returns, and the registry stops it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio

from actors import SYSTEM_CLOCK, Clock, CoordinationError
from supervisor.coordination._metrics import LEASE_CLAIMS, LEASE_LOSSES, LEASES_HELD
from supervisor.coordination._redis import RedisStore
from supervisor.coordination._settings import RedisSettings

__all__ = ("LeaseTable",)

logger = logging.getLogger(__name__)

# Redlock's allowance for the rates of two clocks differing, plus a fixed 2 ms.
_DRIFT_FACTOR = 0.01
_DRIFT_FIXED_S = 0.002
# While Redis does not answer, renewals are retried this many times per renewal interval.
_RETRIES_PER_INTERVAL = 6
_CLAIM_RESULTS = {0: "held_elsewhere", -1: "holding_off", -2: "left_to_less_loaded"}


@dataclass(slots=True)
class _Lease:
    renewed_at: float
    valid_until: float


class LeaseTable:
    """The leases this daemon holds.

    Args:
        settings: the ``[redis]`` settings.
        store: the Redis calls.
        clock: time source (validity and renewal timing use its monotonic clock).
    """

    def __init__(
        self,
        settings: RedisSettings,
        store: RedisStore,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._ttl_ms = int(settings.lease_ttl_s * 1000)
        self._margin_s = settings.lease_ttl_s * _DRIFT_FACTOR + _DRIFT_FIXED_S
        self._held: dict[str, _Lease] = {}

    @property
    def held(self) -> frozenset[str]:
        """Rooms whose lease this daemon holds."""
        return frozenset(self._held)

    def renewed_at(self, room: str) -> float | None:
        """When ``room``'s lease was last taken or renewed (this table's clock), if it is held."""
        lease = self._held.get(room)
        return None if lease is None else lease.renewed_at

    async def claim(self, room: str) -> bool:
        """Try to take ``room``'s lease once; True when this daemon now holds it.

        Never raises for a Redis failure: an unreachable Redis means "not won".
        """
        sent = self._clock.monotonic()
        try:
            node = self._settings.node_id
            status, _ms = await self._store.acquire_lease(room, node, self._ttl_ms)
        except CoordinationError as exc:
            LEASE_CLAIMS.labels(result="error").inc()
            logger.warning(
                "could not claim a room lease; will retry at the next reconcile",
                extra={"room": room, "error": type(exc.__cause__).__name__},
            )
            return False
        if status == 1:
            self._held[room] = _Lease(sent, sent + self._settings.lease_ttl_s - self._margin_s)
            LEASE_CLAIMS.labels(result="won").inc()
            LEASES_HELD.set(len(self._held))
            return True
        LEASE_CLAIMS.labels(result=_CLAIM_RESULTS.get(status, "holding_off")).inc()
        return False

    async def keep(self, room: str) -> str:
        """Renew ``room``'s lease until cancelled; return the reason once it is lost.

        Returns:
            ``"taken"`` (another node holds it) or ``"unreachable"`` (no renewal succeeded
            before the lease's local validity ended).
        """
        lease = self._held.get(room)
        if lease is None:
            raise RuntimeError("LeaseTable.keep() called for a room whose lease is not held")
        interval = self._settings.renew_interval_s
        retry_s = interval / _RETRIES_PER_INTERVAL
        next_at = lease.renewed_at + interval
        while True:
            await self._clock.sleep(max(0.0, next_at - self._clock.monotonic()))
            sent = self._clock.monotonic()
            remaining = lease.valid_until - sent
            if remaining <= 0:
                return self._lost(room, "unreachable")
            result: int | None = None
            with anyio.move_on_after(remaining):
                try:
                    result = await self._store.renew_lease(
                        room, self._settings.node_id, self._ttl_ms
                    )
                except CoordinationError:
                    pass  # counted by the store; retried below until the validity ends
            if result is None:
                next_at = min(self._clock.monotonic() + retry_s, lease.valid_until)
                continue
            if result == 0:
                return self._lost(room, "taken")
            if result == 2:
                logger.info("room lease re-claimed after Redis lost it", extra={"room": room})
            lease.renewed_at = sent
            lease.valid_until = sent + self._settings.lease_ttl_s - self._margin_s
            next_at = sent + interval

    async def release(self, room: str) -> None:
        """Give ``room``'s lease back (compare-and-delete); a Redis failure only means the
        lease expires by itself after its TTL. Never raises."""
        self._held.pop(room, None)
        LEASES_HELD.set(len(self._held))
        try:
            await self._store.release_lease(room, self._settings.node_id)
        except CoordinationError:
            logger.info("could not release a room lease; it will expire", extra={"room": room})

    def _lost(self, room: str, reason: str) -> str:
        self._held.pop(room, None)
        LEASES_HELD.set(len(self._held))
        LEASE_LOSSES.labels(reason=reason).inc()
        logger.warning(
            "room lease lost; stopping the room's agent", extra={"room": room, "reason": reason}
        )
        return reason
