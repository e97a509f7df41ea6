"""An event's contract JSON, checked once, at ``emit()``: everything the outbox, the embedded
store and the backend will need of it (every string UTF-8, ``data`` JSON data, ``ts`` a finite
number), so that an event that could never be stored or sent is refused before it is queued,
and never stalls the events behind it.

Encoding is the check: serialising the event with orjson walks every value once (about half
a microsecond for a turn), and the text it produces is what the outbox stores, so the writer
does not serialise it again. Nothing here logs; nothing returns event contents.
"""

from __future__ import annotations

import json
import math
from typing import Any

from actors._events import Event, EventType
from actors.persistence._json import dumps

__all__ = ("FIELDS", "invalid_field", "serialise", "storable_body", "storable_text")

FIELDS = ("id", "type", "ts", "room", "conversation_id", "data")
"""The fields ``invalid_field`` names (metric label values stay within these)."""

# A key of ``data`` is named in logs only when it looks like a field name: keys are set by our
# code, but a stray one must not put user text in a log line.
_KEY_NAME_MAX = 32


def serialise(event: Event) -> str:
    """The event's contract JSON, compact.

    Raises:
        TypeError, ValueError: a field cannot be stored or sent (``invalid_field`` says which).
    """
    if not math.isfinite(event.ts):  # TypeError for a ts that is not a number at all
        raise ValueError("ts is not a finite number")
    return dumps(event.to_json())


def invalid_field(event: Event) -> tuple[str, str]:
    """Which field makes ``serialise`` refuse the event, for a log line: the field (one of
    ``FIELDS``) and a detail that names, at most, a key of ``data`` (never a value)."""
    for name in ("id", "room", "conversation_id"):
        if not _is_text(getattr(event, name)):
            return name, name
    if not isinstance(event.type, EventType):
        return "type", "type"
    if not isinstance(event.ts, int | float) or not math.isfinite(event.ts):
        return "ts", "ts"
    data: Any = event.data
    if not isinstance(data, dict):
        return "data", "data"
    for key, value in data.items():
        try:
            dumps({key: value})
        except (TypeError, ValueError):
            named = isinstance(key, str) and key.isidentifier() and key.isascii()
            return "data", f"data.{key}" if named and len(key) <= _KEY_NAME_MAX else "data"
    return "data", "data"


def storable_text(value: object) -> str:
    """``value`` as text SQLite can always store: text that is not UTF-8 keeps its bad
    characters as ``\\\\udXXXX`` escapes."""
    text = value if isinstance(value, str) else repr(value)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def storable_body(event: Event) -> str:
    """The event as ASCII JSON text whatever it holds (values that are not JSON data as their
    ``repr``), for a dead letter: enough to see what it was, and always storable."""
    ts = event.ts if isinstance(event.ts, int | float) else repr(event.ts)
    obj: dict[str, Any] = {
        "id": storable_text(event.id),
        "type": storable_text(str(event.type)),
        "ts": ts,
        "room": storable_text(event.room),
        "conversation_id": storable_text(event.conversation_id),
        "data": event.data,
    }
    try:
        # ensure_ascii writes a lone surrogate as an escape, which any SQLite text can hold.
        return json.dumps(obj, default=repr, ensure_ascii=True, allow_nan=True, skipkeys=True)
    except (TypeError, ValueError):  # e.g. a data dict that contains itself
        obj["data"] = repr(event.data)
        return json.dumps(obj, ensure_ascii=True, allow_nan=True)


def _is_text(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
