"""What this process has seen of each provider: when it last answered, when it last failed.

The fallback chains record every first output and every failure here; a room host sends the
summary in each heartbeat, and the supervisor's readyz shows it. Ages, not timestamps, leave
the process, so no clock is shared. Only the error's type is kept, never its text.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ("merge_health", "note_failure", "note_ok", "provider_health")


@dataclass(slots=True)
class _Seen:
    ok_at: float | None = None
    failed_at: float | None = None
    error: str | None = None


_SEEN: dict[tuple[str, str], _Seen] = {}


def note_ok(stage: str, vendor: str) -> None:
    """``vendor`` produced its first output for ``stage`` just now."""
    _SEEN.setdefault((stage, vendor), _Seen()).ok_at = time.monotonic()


def note_failure(stage: str, vendor: str, error: str) -> None:
    """``vendor`` failed for ``stage`` just now, with an error of type ``error``."""
    seen = _SEEN.setdefault((stage, vendor), _Seen())
    seen.failed_at, seen.error = time.monotonic(), error


def provider_health() -> list[dict[str, object]]:
    """One entry per provider used in this process: stage, vendor, the ages in seconds of its
    last success and last failure (None: never), the last failure's error type, and whether it
    is failing (its last outcome was a failure)."""
    now = time.monotonic()

    def age(at: float | None) -> float | None:
        return None if at is None else round(now - at, 1)

    return [
        {
            "stage": stage,
            "vendor": vendor,
            "last_ok_age_s": age(seen.ok_at),
            "last_failure_age_s": age(seen.failed_at),
            "last_error": seen.error,
            "failing": seen.failed_at is not None
            and (seen.ok_at is None or seen.failed_at > seen.ok_at),
        }
        for (stage, vendor), seen in sorted(_SEEN.items())
    ]


def merge_health(
    reports: Iterable[Iterable[Mapping[str, object]]],
) -> dict[str, dict[str, object]]:
    """Several processes' ``provider_health()`` as one, by ``stage:vendor``: the most recent
    success and failure anywhere, and whether the provider is failing (its latest outcome
    anywhere was a failure)."""
    merged: dict[str, dict[str, object]] = {}
    for report in reports:
        for seen in report:
            key = f"{seen.get('stage')}:{seen.get('vendor')}"
            entry = merged.setdefault(
                key, {"last_ok_age_s": None, "last_failure_age_s": None, "last_error": None}
            )
            ok, failed = _age(seen.get("last_ok_age_s")), _age(seen.get("last_failure_age_s"))
            if ok is not None and _younger(ok, entry["last_ok_age_s"]):
                entry["last_ok_age_s"] = ok
            if failed is not None and _younger(failed, entry["last_failure_age_s"]):
                entry["last_failure_age_s"] = failed
                entry["last_error"] = seen.get("last_error")
    for entry in merged.values():
        ok, failed = _age(entry["last_ok_age_s"]), _age(entry["last_failure_age_s"])
        entry["failing"] = failed is not None and (ok is None or failed < ok)
    return merged


def _age(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _younger(age: float, than: object) -> bool:
    other = _age(than)
    return other is None or age < other
