"""JSON for the hot path: orjson when it is installed (about three times faster here), the
standard library otherwise. Both produce compact UTF-8 JSON that any backend can parse.

One difference: the standard library refuses NaN and infinities (``ValueError``), while orjson
writes them as ``null``. Both raise ``TypeError`` for values that are not JSON data, and both
refuse text that is not UTF-8 (a lone surrogate such as ``"\\ud800"``, which SQLite and every
backend would refuse later): orjson with a ``TypeError``, the standard library with a
``UnicodeEncodeError`` (a ``ValueError``).
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

__all__ = ("dumps", "loads")

_orjson: ModuleType | None
try:
    import orjson as _orjson
except ImportError:  # the standard library does the same, slower
    _orjson = None

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(obj: Any) -> str:
    """Compact JSON text of ``obj`` (``TypeError``/``ValueError`` if it is not JSON data or not
    UTF-8 text)."""
    if _orjson is not None:
        # Non-string keys become strings, as with the standard library. orjson refuses lone
        # surrogates itself (its error is a TypeError).
        text: str = _orjson.dumps(obj, option=_orjson.OPT_NON_STR_KEYS).decode()
        return text
    text = _ENCODER.encode(obj)
    text.encode()  # UnicodeEncodeError (a ValueError) on a lone surrogate, as orjson refuses it
    return text


def loads(raw: bytes | str) -> Any:
    """Parse JSON text (``ValueError`` if it is not JSON)."""
    if _orjson is not None:
        return _orjson.loads(raw)
    return json.loads(raw)
