"""Logging set-up: text for humans or one JSON object per line, fields from ``extra``.

Messages are static; room ids and other context go in ``extra``. User text and identities
are only ever logged at DEBUG under ``pii.*`` keys.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

from supervisor._config import LoggingSettings

__all__ = ("configure_logging",)

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


class _OurHandler(logging.StreamHandler[TextIO]):
    """The root handler this module installs (its type tells it from anyone else's)."""


def configure_logging(settings: LoggingSettings) -> None:
    """Install the root handler (idempotent: SIGHUP calls it again with new settings)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _OurHandler):
            root.removeHandler(handler)
    handler = _OurHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.level)
    # The SDKs are chatty at INFO; their warnings still come through.
    for name in ("livekit", "aiohttp.access"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
