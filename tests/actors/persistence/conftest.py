"""Fixtures of the persistence tests: the reference backend over real HTTP with faults, an
actor running in a task group, a clock that records retry waits without spending them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from actors import Event, EventType, SystemClock
from actors.persistence import EmbeddedStore, PersistenceActor, PersistenceSettings
from tests.fakes.backend import FaultyBackend, running_backend

# Retry waits are recorded, then cut to this, so backoff does not slow the tests down while a
# retry storm cannot spin the loop either.
_RETRY_WAIT_CAP_S = 0.005


class RecordingClock(SystemClock):
    """The real clock, except that ``sleep`` (used only for retry waits) records the asked
    duration and waits at most a few milliseconds."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self._changed: anyio.Event | None = None

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        await anyio.sleep(min(seconds, _RETRY_WAIT_CAP_S))

    async def wait_sleeps(self, count: int) -> None:
        """Wait until ``count`` retry waits have begun."""
        while len(self.sleeps) < count:
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()


@pytest.fixture
def clock() -> RecordingClock:
    return RecordingClock()


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[FaultyBackend]:
    async with running_backend(tmp_path / "backend" / "backend.sqlite3") as served:
        yield served


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    local = EmbeddedStore(tmp_path / "data" / "store.sqlite3")
    yield local
    local.close()


def settings(
    data_dir: Path, backend: FaultyBackend | None = None, **overrides: Any
) -> PersistenceSettings:
    """Fast settings for tests: short flushes and retries, the backend when given."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "flush_interval_ms": 2,
        "retry_initial_s": 0.01,
        "retry_max_s": 0.05,
        "request_timeout_s": 2.0,
        "lookup_timeout_s": 1.0,
    }
    if backend is not None:
        values["backend_url"] = backend.url
        if backend.token is not None:
            values["backend_token"] = backend.token
    values.update(overrides)
    return PersistenceSettings.model_validate(values)


def turn(conversation: str, index: int, *, room: str = "room-1", **data: Any) -> Event:
    """A user turn with a predictable id, so tests can check what arrived."""
    payload: dict[str, Any] = {"role": "user", "content": f"turn {index}", "speaker": "alice"}
    payload.update(data)
    ts = 1_700_000_000.0 + index
    return Event(EventType.TURN, room, conversation, payload, ts, f"EV_{index:08d}")


@asynccontextmanager
async def running(
    actor: PersistenceActor, *, close_deadline_s: float = 10.0
) -> AsyncIterator[PersistenceActor]:
    """Run ``actor`` in a task group; on exit, close it and give ``run()`` the deadline the
    daemon gives it (what is not shipped by then stays in the outbox)."""
    async with anyio.create_task_group() as tg:
        await tg.start(actor.run)
        try:
            yield actor
        finally:
            actor.close()
            tg.cancel_scope.deadline = anyio.current_time() + close_deadline_s


def index_of(event_id: str) -> int:
    return int(event_id.removeprefix("EV_"))


def arrival_by_conversation(store: EmbeddedStore) -> dict[str, list[int]]:
    """Indices of the stored events of each conversation, in the backend's arrival order."""
    out: dict[str, list[int]] = {}
    for event in store.events():
        out.setdefault(event["conversation_id"], []).append(index_of(event["id"]))
    return out
