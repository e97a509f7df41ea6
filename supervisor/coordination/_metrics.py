"""Prometheus metrics of the Redis coordination (leases, per-user limits, Redis health)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = (
    "FLOOR_LOST",
    "LEASES_HELD",
    "LEASE_CLAIMS",
    "LEASE_LOSSES",
    "REDIS_ERRORS",
    "REDIS_UP",
    "USER_LIMIT_REFUSALS",
)

REDIS_UP = Gauge(
    "voice_supervisor_redis_up", "1 while the last Redis health probe succeeded, else 0."
)
REDIS_ERRORS = Counter(
    "voice_supervisor_redis_errors_total",
    "Redis commands that failed, by operation (ping, acquire, renew, release, admit, turn, lock, "
    "floor, floor_renew, floor_release).",
    ["op"],
)
LEASES_HELD = Gauge("voice_supervisor_leases_held", "Room leases this daemon holds.")
LEASE_CLAIMS = Counter(
    "voice_supervisor_lease_claims_total",
    "Attempts to take a room's lease by result (won, held_elsewhere, holding_off, "
    "left_to_less_loaded, error).",
    ["result"],
)
LEASE_LOSSES = Counter(
    "voice_supervisor_lease_losses_total",
    "Leases lost while their room's agent ran, by reason (taken, unreachable); the agent stops.",
    ["reason"],
)
USER_LIMIT_REFUSALS = Counter(
    "voice_supervisor_user_limit_refusals_total",
    "Answers refused by a per-user limit (rooms, turns); the agent says why instead.",
    ["limit"],
)
FLOOR_LOST = Counter(
    "voice_supervisor_floor_lost_total",
    "Holds on a room's floor (Redis) that expired while their agent spoke (its daemon stalled "
    "past the floor's TTL); another agent may have spoken at the same time.",
)
