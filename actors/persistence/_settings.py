"""Settings of the persistence actor (``[persistence]`` in config.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from actors._settings import Settings

__all__ = ("PersistenceSettings",)


class PersistenceSettings(Settings):
    data_dir: Path = Path("./data")
    """Directory for the embedded store (store.sqlite3) and the durable outboxes."""

    backend_url: str | None = None
    """Base URL of the team's backend (``https://backend.example/``); unset = embedded store."""

    backend_token: SecretStr | None = None
    """Bearer token for the backend; set it with the BACKEND_TOKEN environment variable."""

    flush_interval_ms: int = Field(default=20, ge=1, le=10_000)
    """Longest time an emitted event waits before its group commit."""

    batch_max: int = Field(default=500, ge=1, le=10_000)
    """Most events per group commit and per backend request."""

    queue_max: int = Field(default=100_000, ge=100, le=10_000_000)
    """Most events held in memory before the outbox commits them; beyond it emit() fails loudly."""

    request_timeout_s: float = Field(default=5.0, gt=0, le=300)
    """Timeout of one backend request."""

    retry_initial_s: float = Field(default=0.2, gt=0, le=60)
    """First retry delay after a failed backend request (exponential backoff with jitter)."""

    retry_max_s: float = Field(default=30.0, gt=0, le=3600)
    """Longest delay between two backend retries; also caps a backend's ``Retry-After``
    (which is floored at ``retry_initial_s``, so ``Retry-After: 0`` cannot spin)."""

    max_attempts: int = Field(default=8, ge=1, le=1000)
    """Failed backend attempts an event gets before the shipper isolates it: its batch is halved
    until the event stands alone, and an event that still fails alone while the backend takes
    other events goes to the dead letters, so the outbox head moves on. When the backend takes
    nothing (an outage, a wrong token), nothing is dead-lettered and the event starts afresh."""

    max_failing_s: float = Field(default=120.0, gt=0, le=86_400)
    """Longest an event may keep failing, from its first failed attempt, before it is isolated
    as with ``max_attempts`` (whichever comes first); bounds the time a backend that keeps
    answering ``Retry-After`` can hold the outbox head."""

    outbox_max_mb: int = Field(default=1024, ge=1, le=1_048_576)
    """Most data the outbox file may hold (waiting events and dead letters). Once reached,
    ``emit()`` refuses new events (``OutboxFullError``), readyz answers 503 and a log names this
    setting; events are taken again once the outbox is below nine tenths of it."""

    history_limit: int = Field(default=20, ge=0, le=1000)
    """How many recent messages a room actor restores when its conversation already has some."""

    outbox_name: str = Field(default="main", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """This process's outbox file is ``outbox-<name>.sqlite3`` in data_dir; every process that
    hosts room actors needs its own name (a second process with the same name refuses to start).
    """

    outbox_synchronous: Literal["normal", "full"] = "normal"
    """SQLite ``synchronous`` of the outbox: ``normal`` survives a crash of the process (the
    acknowledgement guarantee); ``full`` also survives a power cut, at some throughput."""

    request_max_kb: int = Field(default=4096, ge=16, le=262_144)
    """Largest backend request body; a batch stops growing past it (a bigger event goes alone)."""

    lookup_timeout_s: float = Field(default=2.0, gt=0, le=60)
    """Timeout of the agent_joined and recent_messages requests; past it the actor falls back to
    a local conversation id and local history, so a slow backend never holds up a room."""

    @property
    def store_path(self) -> Path:
        """The embedded store's database file."""
        return self.data_dir / "store.sqlite3"

    @property
    def outbox_path(self) -> Path:
        """This process's durable outbox file."""
        return self.data_dir / f"outbox-{self.outbox_name}.sqlite3"
