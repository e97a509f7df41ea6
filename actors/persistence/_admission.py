"""What ``emit()`` lets in, and why it refuses: the persistence actor's gate.

Two kinds of refusal. An event that could never be stored or sent is refused alone (logged
by field name, never value, at most once per ``_INVALID_LOG_INTERVAL_S`` per field, and
counted). Every event is refused, with ``OutboxFullError``, while the outbox cannot take more:
it holds ``outbox_max_mb``, or the disk is full (a commit failed with SQLITE_FULL or ENOSPC),
or the actor is closed. ``refusal`` names the reason and the setting; readyz reports it, and a
commit that keeps failing is retried with backoff and logged at most once a minute.
"""

from __future__ import annotations

import logging

from actors._clock import Clock
from actors._events import Event
from actors.persistence._encode import invalid_field
from actors.persistence._logs import LogLimiter
from actors.persistence._metrics import EVENTS_INVALID
from actors.persistence._outbox import Outbox, is_disk_full
from actors.persistence._settings import PersistenceSettings

__all__ = ("Admission",)

logger = logging.getLogger(__name__)

_STORAGE_LOG_INTERVAL_S = 60.0
_INVALID_LOG_INTERVAL_S = 10.0
# The outbox takes events again below this share of outbox_max_mb, so readiness does not flap
# with every batch shipped and every batch committed at the cap.
_RESUME_SHARE = 0.9
_MAX_EXPONENT = 32

_CLOSED = "cannot emit an event: the persistence actor is closed"
_DISK_FULL = "cannot emit an event: the disk is full; free space where [persistence] data_dir is"
_OVER_CAP = (
    "cannot emit an event: the outbox holds [persistence] outbox_max_mb of events the backend "
    "has not taken; check the backend, or raise outbox_max_mb"
)


class Admission:
    """The gate in front of the persistence actor's queue.

    Args:
        settings: ``outbox_max_mb``, the retry delays (the storage backoff) and the outbox name.
        clock: time for the log limits.

    Attributes:
        refusal: why every event is refused now, None while events are taken.
        invalid: events refused alone because a field cannot be stored or sent.
    """

    def __init__(self, settings: PersistenceSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._max_bytes = settings.outbox_max_mb * 1024 * 1024
        self.refusal: str | None = None
        self.invalid = 0
        self._closed = False
        self._disk_full = False
        self._over_cap = False
        self._storage_failures = 0  # commits failed in a row
        self._storage_log = LogLimiter(_STORAGE_LOG_INTERVAL_S, clock)
        self._invalid_logs: dict[str, LogLimiter] = {}

    @property
    def closed(self) -> bool:
        """``close()`` was called: no event is taken any more."""
        return self._closed

    def close(self) -> None:
        """Refuse every event from now on."""
        self._closed = True
        self._update()

    def refuse_invalid(self, event: Event) -> None:
        """Count and log an event ``serialise`` refused, naming the field that spoils it."""
        field, detail = invalid_field(event)
        self.invalid += 1
        EVENTS_INVALID.labels(self._settings.outbox_name, field).inc()
        limiter = self._invalid_logs.get(field)
        if limiter is None:
            limiter = self._invalid_logs[field] = LogLimiter(_INVALID_LOG_INTERVAL_S, self._clock)
        held = limiter.allow()
        if held is not None:
            logger.warning(
                "event refused: a field cannot be stored or sent (not UTF-8 text, not JSON data)",
                extra={"field": detail, "held_back": held},
            )

    def storage_failed(self, exc: Exception, events: int) -> float:
        """A commit failed for the database's sake; returns how long to wait before the next.

        A full disk refuses every event until a commit succeeds again.
        """
        self._storage_failures += 1
        disk_full = is_disk_full(exc)
        if disk_full != self._disk_full:
            self._disk_full = disk_full
            self._update()
        held = self._storage_log.allow()
        if held is not None:
            extra = {"events": events, "error": f"{type(exc).__name__}: {exc}", "held_back": held}
            if disk_full:
                logger.error(
                    "the disk is full: emit() refuses events until the outbox can commit again;"
                    " retrying with backoff",
                    extra=extra,
                )
            else:
                logger.error("committing events failed; retrying with backoff", extra=extra)
        initial, longest = self._settings.retry_initial_s, self._settings.retry_max_s
        exponent = min(self._storage_failures - 1, _MAX_EXPONENT)
        return max(initial, min(longest, initial * 2.0**exponent))

    def storage_recovered(self) -> None:
        """A commit succeeded."""
        if not self._storage_failures:
            return
        logger.info("committing events works again", extra={"failures": self._storage_failures})
        self._storage_failures = 0
        self._storage_log.reset()
        if self._disk_full:
            self._disk_full = False
            self._update()

    def check_size(self, outbox: Outbox) -> None:
        """Refuse events while ``outbox`` holds ``outbox_max_mb``; take them again below
        ``_RESUME_SHARE`` of it."""
        used = outbox.used_bytes
        if not self._over_cap and used >= self._max_bytes:
            self._over_cap = True
            logger.warning(
                "the outbox reached [persistence] outbox_max_mb; emit() refuses events until "
                "the backend takes some",
                extra={"outbox_mb": round(used / 2**20, 1), "outbox_max_mb": self._max_bytes >> 20},
            )
        elif self._over_cap and used < self._max_bytes * _RESUME_SHARE:
            self._over_cap = False
            logger.info(
                "the outbox is below [persistence] outbox_max_mb again; emit() takes events",
                extra={"outbox_mb": round(used / 2**20, 1)},
            )
        else:
            return
        self._update()

    def _update(self) -> None:
        if self._closed:
            self.refusal = _CLOSED
        elif self._disk_full:
            self.refusal = _DISK_FULL
        elif self._over_cap:
            self.refusal = _OVER_CAP
        else:
            self.refusal = None
