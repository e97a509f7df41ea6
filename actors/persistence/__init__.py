"""Persistence: the actor that takes every event durably to the store or the backend."""

from __future__ import annotations

from actors.persistence._actor import PersistenceActor
from actors.persistence._settings import PersistenceSettings
from actors.persistence._store import EmbeddedStore

__all__ = ("EmbeddedStore", "PersistenceActor", "PersistenceSettings")
