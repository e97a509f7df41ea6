"""Validation of the backend contract's request bodies (``docs/backend-openapi.yaml``).

The reference backend checks every batch here before it stores anything, so a malformed batch
is refused whole with a 400 that names the first bad event. The rules mirror the OpenAPI
schemas (``tests/actors/persistence/test_contract.py`` checks that both refuse the same bodies);
the data fields come from the payloads' typed definitions (``actors._payloads``), checked by
hand because a generic JSON-schema validator costs more per event than storing it. Error
messages name fields, never their values (they may be user text).
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from actors._events import Event, EventType
from actors._payloads import PAYLOADS, json_fields
from actors.persistence._json import loads

__all__ = ("BATCH_MAX_EVENTS", "ContractError", "parse_agent_joined", "parse_batch")

BATCH_MAX_EVENTS = 10_000
"""Most events in one batch (``[persistence] batch_max`` cannot exceed it)."""

_ID_MAX = 200
_ROLES = frozenset({"user", "assistant", "system"})
_TYPES = {t.value: t for t in EventType}

# Each type's data fields, (required, allowed JSON kinds), from its one typed definition.
_DATA_FIELDS: dict[str, dict[str, tuple[bool, frozenset[str]]]] = {
    t.value: json_fields(cls) for t, cls in PAYLOADS.items()
}


class ContractError(ValueError):
    """A request body breaks the contract.

    Attributes:
        event_index: the position of the bad event in the batch, or None.
        event_id: the bad event's id when it has a usable one, or None.
    """

    def __init__(
        self, message: str, *, event_index: int | None = None, event_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.event_index = event_index
        self.event_id = event_id

    def to_json(self) -> dict[str, Any]:
        """The contract's 400 body."""
        return {"error": str(self), "event_index": self.event_index, "event_id": self.event_id}


def parse_batch(raw: bytes) -> list[Event]:
    """Validate a ``POST /v1/events:batch`` body and return its events in order.

    Raises:
        ContractError: the body is not a valid batch; names the first bad event.
    """
    body = _load(raw)
    events = body.get("events")
    if not isinstance(events, list):
        raise ContractError("the body must be an object with an 'events' array")
    if len(events) > BATCH_MAX_EVENTS:
        raise ContractError(f"a batch holds at most {BATCH_MAX_EVENTS} events")
    parsed = []
    for index, obj in enumerate(events):
        problem = _event_problem(obj)
        if problem is not None:
            event_id = obj.get("id") if isinstance(obj, dict) else None
            usable = isinstance(event_id, str) and 0 < len(event_id) <= _ID_MAX
            raise ContractError(
                f"event {index}: {problem}",
                event_index=index,
                event_id=event_id if usable else None,
            )
        # Validated above, so the fields are used as they are (no copies, no conversions).
        parsed.append(
            Event(
                _TYPES[obj["type"]],
                obj["room"],
                obj["conversation_id"],
                obj["data"],
                obj["ts"],
                obj["id"],
            )
        )
    return parsed


def parse_agent_joined(raw: bytes) -> dict[str, Any]:
    """Validate a ``POST /v1/rooms/{room}/agent-joined`` body and return its metadata.

    Raises:
        ContractError: the body has no ``metadata`` object.
    """
    body = _load(raw)
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        raise ContractError("the body must be an object with a 'metadata' object")
    return metadata


def _load(raw: bytes) -> dict[str, Any]:
    try:
        body = loads(raw)
    except ValueError:
        raise ContractError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise ContractError("the body must be a JSON object")
    return body


def _event_problem(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return "an event must be an object"
    for key in ("id", "conversation_id"):
        value = obj.get(key)
        if not isinstance(value, str) or not 0 < len(value) <= _ID_MAX:
            return f"'{key}' must be a string of 1 to {_ID_MAX} characters"
    if not isinstance(obj.get("room"), str) or not obj["room"]:
        return "'room' must be a non-empty string"
    kind = obj.get("type")
    if kind not in _TYPES:
        return "'type' must be one of " + ", ".join(sorted(_TYPES))
    if _kind(obj.get("ts")) not in ("number", "integer") or not math.isfinite(obj["ts"]):
        return "'ts' must be a number"
    data = obj.get("data")
    if not isinstance(data, dict):
        return "'data' must be an object"
    for name, (required, kinds) in _DATA_FIELDS[kind].items():
        if name not in data:
            if required:
                return f"data.{name} is required for a {kind} event"
            continue
        got = _kind(data[name])
        if got not in kinds and not (got == "integer" and "number" in kinds):
            return f"data.{name} must be " + " or ".join(sorted(kinds))
    if kind == "turn" and data["role"] not in _ROLES:
        return "data.role must be one of " + ", ".join(sorted(_ROLES))
    if kind == "file":
        if data["size"] < 0:
            return "data.size must not be negative"
        if "content_b64" in data:
            try:
                base64.b64decode(data["content_b64"], validate=True)
            except (binascii.Error, ValueError):
                return "data.content_b64 must be base64"
    return None


def _kind(value: Any) -> str:
    """The JSON kind of a parsed value (bool is not a number, a whole float is a number)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"
