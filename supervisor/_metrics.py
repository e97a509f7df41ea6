"""Prometheus metrics of the supervisor process (names documented in the README)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = (
    "ACTOR_CRASHES",
    "ACTOR_GIVE_UPS",
    "ACTOR_RESTARTS",
    "JOIN_SECONDS",
    "LIVEKIT_UP",
    "RECONCILE_RUNS",
    "ROOMS_ACTIVE",
    "ROOMS_WAITING",
    "STALE_ROOM_FINISHED",
    "WEBHOOKS",
)

WEBHOOKS = Counter(
    "voice_supervisor_webhooks_total",
    "Webhook requests by result (accepted, duplicate, ignored, unauthorized, malformed, "
    "too_large, timeout, saturated, draining).",
    ["result"],
)
ROOMS_ACTIVE = Gauge("voice_supervisor_rooms_active", "Room actors currently joined.")
ROOMS_WAITING = Gauge(
    "voice_supervisor_rooms_waiting",
    "Rooms waiting for a slot because [supervisor] max_rooms is reached (readyz is 503).",
)
ACTOR_RESTARTS = Counter(
    "voice_supervisor_actor_restarts_total", "Room actor restarts (after the restart backoff)."
)
ACTOR_CRASHES = Counter(
    "voice_supervisor_actor_crashes_total",
    "Room actor failures by phase: start (the agent could not join) or run (it failed after "
    "joining); each also sends an error event (room_start_failed, room_crashed).",
    ["phase"],
)
ACTOR_GIVE_UPS = Counter(
    "voice_supervisor_actor_give_ups_total",
    "Rooms abandoned after more than [supervisor] max_restarts failures within "
    "restart_window_s (each also sends an error event, room_given_up); alert on it.",
)
JOIN_SECONDS = Histogram(
    "voice_supervisor_join_seconds",
    "From the webhook (or reconcile) that asked for a room to the agent joined.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LIVEKIT_UP = Gauge(
    "voice_supervisor_livekit_up",
    "1 while the last room-list call to LiveKit (each reconcile) worked, 0 after a failure.",
)
RECONCILE_RUNS = Counter(
    "voice_supervisor_reconcile_total",
    "Room-list reconciles by result (ok, error: LiveKit's room service did not answer).",
    ["result"],
)
STALE_ROOM_FINISHED = Counter(
    "voice_supervisor_stale_room_finished_total",
    "room_finished events (or stops) for an earlier room of the same name, ignored.",
)
