"""The development playground: a page served at ``/playground`` where a person talks to the
agent from a browser, and the endpoints behind it. Off unless ``[playground] enabled = true``
(``run --playground``), and only on loopback unless ``[playground] allow_remote = true``.
"""

from __future__ import annotations

from supervisor.playground._routes import STATIC_DIR, MessageSource, Playground
from supervisor.playground._settings import PlaygroundSettings

__all__ = ("STATIC_DIR", "MessageSource", "Playground", "PlaygroundSettings")
