"""Persistence: the actor that takes every event durably to the backend or the embedded store,
the backend client, and the reference backend serving the contract (docs/backend-openapi.yaml).
"""

from __future__ import annotations

from actors.persistence._actor import PersistenceActor
from actors.persistence._client import probe_backend
from actors.persistence._dead_letters import DeadLetter, read_dead_letters, replay_dead_letters
from actors.persistence._errors import (
    BackendUnavailable,
    EventRejected,
    OutboxLockedError,
)
from actors.persistence._reference_backend import build_backend_app, run_backend, serve_backend
from actors.persistence._schema import (
    OUTBOX_SCHEMA_VERSION,
    STORE_SCHEMA_VERSION,
    StoreTooNewError,
)
from actors.persistence._settings import PersistenceSettings
from actors.persistence._store import EmbeddedStore

__all__ = (
    "OUTBOX_SCHEMA_VERSION",
    "STORE_SCHEMA_VERSION",
    "BackendUnavailable",
    "DeadLetter",
    "EmbeddedStore",
    "EventRejected",
    "OutboxLockedError",
    "PersistenceActor",
    "PersistenceSettings",
    "StoreTooNewError",
    "build_backend_app",
    "probe_backend",
    "read_dead_letters",
    "replay_dead_letters",
    "run_backend",
    "serve_backend",
)
