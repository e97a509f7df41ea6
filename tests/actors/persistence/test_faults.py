"""Fault tests: the backend down, failing, throttling, slow, refusing; shutdown and restart.

Every test checks what the backend stored: each acknowledged event exactly once, and the events
of each conversation in the order they were emitted.
"""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import anyio
import pytest
from prometheus_client import REGISTRY

from actors.persistence import EmbeddedStore, PersistenceActor
from actors.persistence._outbox import Outbox
from tests.actors.persistence.conftest import (
    RecordingClock,
    arrival_by_conversation,
    running,
    settings,
    turn,
)
from tests.fakes.backend import Fault, FaultyBackend, running_backend

pytestmark = [pytest.mark.anyio, pytest.mark.faults]

CONVERSATIONS = 6


def emit_turns(actor: PersistenceActor, indices: range) -> None:
    """Rooms taking turns: event ``i`` belongs to conversation ``i % CONVERSATIONS``."""
    for i in indices:
        actor.emit(turn(f"conv-{i % CONVERSATIONS}", i))


def assert_exactly_once_in_order(store: EmbeddedStore, indices: range) -> None:
    arrived = arrival_by_conversation(store)
    expected: dict[str, list[int]] = {}
    for i in indices:
        expected.setdefault(f"conv-{i % CONVERSATIONS}", []).append(i)
    assert arrived == expected


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_backend_down_then_up(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    await backend.down()
    actor = PersistenceActor(settings(tmp_path / "data", backend, batch_max=50), store, clock)
    async with running(actor):
        emit_turns(actor, range(300))
        await actor.flush()
        await clock.wait_sleeps(3)
        assert actor.backlog == 300
        assert actor.oldest_age_s > 0
        emit_turns(actor, range(300, 600))
        await backend.up()
        with anyio.fail_after(20):
            await actor.wait_empty()
    assert_exactly_once_in_order(backend.store, range(600))
    assert actor.shipped == 600
    assert actor.retries >= 3


async def test_server_errors_are_retried_with_backoff(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    before = metric("voice_supervisor_ship_retries_total", outbox="main", kind="500")
    backend.fail(Fault(500), Fault(502), Fault(503))
    s = settings(tmp_path / "data", backend, retry_initial_s=0.01, retry_max_s=0.03)
    actor = PersistenceActor(s, store, clock)
    async with running(actor):
        emit_turns(actor, range(100))
        with anyio.fail_after(20):
            await actor.wait_empty()
    assert_exactly_once_in_order(backend.store, range(100))
    assert actor.retries >= 3
    assert all(0.01 <= s <= 0.03 for s in clock.sleeps)
    assert [c.status for c in backend.batch_requests()][:4] == [500, 502, 503, 200]
    assert metric("voice_supervisor_ship_retries_total", outbox="main", kind="500") == before + 1


async def test_too_many_requests_waits_for_retry_after(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    in_three_s = email.utils.formatdate(time.time() + 3, usegmt=True)
    backend.fail(Fault(429, retry_after="3"), Fault(503, retry_after=in_three_s))
    actor = PersistenceActor(
        settings(tmp_path / "data", backend, retry_initial_s=0.01, retry_max_s=10), store, clock
    )
    async with running(actor):
        emit_turns(actor, range(20))
        with anyio.fail_after(20):
            await actor.wait_empty()
    assert_exactly_once_in_order(backend.store, range(20))
    assert clock.sleeps[0] == 3.0
    assert 0.5 < clock.sleeps[1] <= 3.0
    assert [c.status for c in backend.batch_requests()] == [429, 503, 200]


async def test_a_slow_backend_times_out_and_the_retry_is_deduplicated(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    before = metric("voice_supervisor_ship_retries_total", outbox="main", kind="timeout")
    backend.fail(Fault(delay_s=1.0, pass_through=True))
    actor = PersistenceActor(
        settings(tmp_path / "data", backend, request_timeout_s=0.2), store, clock
    )
    async with running(actor):
        emit_turns(actor, range(30))
        with anyio.fail_after(20):
            await actor.wait_empty()
            # The slow request is still answered (and stored) after the client gave up on it.
            await backend.wait_requests(2)
    assert_exactly_once_in_order(backend.store, range(30))
    assert min(backend.received.values()) >= 2  # sent, timed out, sent again
    assert metric("voice_supervisor_ship_retries_total", outbox="main", kind="timeout") > before


async def test_an_event_the_backend_refuses_is_dead_lettered(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    before = metric("voice_supervisor_events_dead_lettered_total", outbox="main", reason="rejected")
    actor = PersistenceActor(settings(tmp_path / "data", backend), store, clock)
    async with running(actor):
        for i in range(10):
            actor.emit(turn("conv-0", i, role="robot" if i == 4 else "user"))
        with anyio.fail_after(20):
            await actor.wait_empty()
        letters = await actor.dead_letters()
    assert arrival_by_conversation(backend.store) == {"conv-0": [0, 1, 2, 3, 5, 6, 7, 8, 9]}
    assert [(d["id"], d["status"]) for d in letters] == [("EV_00000004", 400)]
    assert "data.role" in letters[0]["reason"]
    assert actor.dead_lettered == 1
    after = metric("voice_supervisor_events_dead_lettered_total", outbox="main", reason="rejected")
    assert after == before + 1


async def test_a_refusal_naming_no_event_is_bisected_down_to_the_bad_ones(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    backend.reject_ids.update({"EV_00000005", "EV_00000011"})
    actor = PersistenceActor(settings(tmp_path / "data", backend), store, clock)
    async with running(actor):
        emit_turns(actor, range(16))
        with anyio.fail_after(20):
            await actor.wait_empty()
        letters = await actor.dead_letters()
    good = [i for i in range(16) if i not in (5, 11)]
    arrived = arrival_by_conversation(backend.store)
    assert sorted(i for ids in arrived.values() for i in ids) == good
    assert all(ids == sorted(ids) for ids in arrived.values())
    assert [d["id"] for d in letters] == ["EV_00000005", "EV_00000011"]
    assert actor.retries == 0


async def test_a_wrong_token_keeps_the_events_until_it_is_fixed(
    tmp_path: Path, store: EmbeddedStore, clock: RecordingClock
) -> None:
    async with running_backend(tmp_path / "backend.sqlite3", token="right") as backend:
        data = tmp_path / "data"
        wrong = PersistenceActor(settings(data, backend, backend_token="wrong"), store, clock)
        async with running(wrong, close_deadline_s=0.2):
            emit_turns(wrong, range(10))
            await clock.wait_sleeps(3)
            assert wrong.backlog == 10
        assert wrong.dead_lettered == 0
        assert {c.status for c in backend.captured} == {401}
        right = PersistenceActor(settings(data, backend), store, clock)
        async with running(right):
            with anyio.fail_after(20):
                await right.wait_empty()
        assert_exactly_once_in_order(backend.store, range(10))


async def test_close_ships_everything_before_returning(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend
) -> None:
    actor = PersistenceActor(settings(tmp_path / "data", backend, flush_interval_ms=500), store)
    with anyio.fail_after(20):
        async with running(actor):
            emit_turns(actor, range(2000))
    assert actor.backlog == 0
    assert_exactly_once_in_order(backend.store, range(2000))


async def test_what_close_cannot_ship_is_shipped_on_the_next_start(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    data = tmp_path / "data"
    await backend.down()
    first = PersistenceActor(settings(data, backend), store, clock)
    async with running(first, close_deadline_s=0.3):
        emit_turns(first, range(300))
    # Closed while the backend was down: committed, not shipped, kept on disk.
    assert first.committed == 300
    assert first.backlog == 300
    left = Outbox.open(data / "outbox-main.sqlite3")
    assert left.count == 300
    left.close()
    await backend.up()
    second = PersistenceActor(settings(data, backend), store, clock)
    async with running(second):
        emit_turns(second, range(300, 400))
        with anyio.fail_after(20):
            await second.wait_empty()
    assert_exactly_once_in_order(backend.store, range(400))
