"""Prometheus metrics of the persistence actor, labelled by outbox name.

The backlog and oldest-age gauges are read from the actor at scrape time, so they stay true
while the shipper is stuck in a retry wait.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = (
    "BATCH_SECONDS",
    "EVENTS_COMMITTED",
    "EVENTS_DEAD_LETTERED",
    "EVENTS_INVALID",
    "EVENTS_SHIPPED",
    "OUTBOX_BACKLOG",
    "OUTBOX_OLDEST_AGE",
    "OUTBOX_REFUSING",
    "SHIP_RETRIES",
)

OUTBOX_BACKLOG = Gauge(
    "voice_supervisor_outbox_backlog",
    "Events emitted but not yet at their destination (in memory or in the outbox).",
    ["outbox"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "voice_supervisor_outbox_oldest_age_seconds",
    "Age of the oldest event not yet at its destination (0 when none).",
    ["outbox"],
)
EVENTS_COMMITTED = Counter(
    "voice_supervisor_events_committed_total",
    "Events acknowledged: committed to the outbox, or to the embedded store without a backend.",
    ["outbox"],
)
EVENTS_SHIPPED = Counter(
    "voice_supervisor_events_shipped_total",
    "Events the backend acknowledged with a 200 (duplicates it reported included).",
    ["outbox"],
)
EVENTS_DEAD_LETTERED = Counter(
    "voice_supervisor_events_dead_lettered_total",
    "Events refused for good, by reason: rejected (the backend, a final 4xx), exhausted (the "
    "backend kept failing the event past [persistence] max_attempts or max_failing_s while it "
    "took others), both kept in the dead-letter table; or unstorable (the outbox or the "
    "embedded store could not take it).",
    ["outbox", "reason"],
)
EVENTS_INVALID = Counter(
    "voice_supervisor_events_invalid_total",
    "Events emit() refused because a field cannot be stored or sent (text that is not UTF-8, "
    "data that is not JSON, a ts that is not a finite number), by field; never committed.",
    ["outbox", "field"],
)
OUTBOX_REFUSING = Gauge(
    "voice_supervisor_outbox_refusing",
    "1 while emit() refuses events: the outbox holds [persistence] outbox_max_mb, the disk is "
    "full, or the actor is closed (readyz says which).",
    ["outbox"],
)
SHIP_RETRIES = Counter(
    "voice_supervisor_ship_retries_total",
    "Failed backend batch requests that will be retried, by kind (status code, timeout, "
    "connection).",
    ["outbox", "kind"],
)
BATCH_SECONDS = Histogram(
    "voice_supervisor_ship_batch_seconds",
    "Duration of one backend batch request, whatever its outcome.",
    ["outbox"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
