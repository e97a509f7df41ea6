"""The persistence actor without faults: the embedded store, the backend, lookups, metrics."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import anyio
import pytest
from prometheus_client import REGISTRY

from actors import Event, EventType, OutboxFullError
from actors.persistence import EmbeddedStore, OutboxLockedError, PersistenceActor
from tests.actors.persistence.conftest import (
    RecordingClock,
    arrival_by_conversation,
    running,
    settings,
    turn,
)
from tests.fakes.backend import Fault, FaultyBackend

pytestmark = pytest.mark.anyio


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- without a backend: the embedded store ------------------------------------------------------


async def test_events_go_to_the_embedded_store_in_group_commits(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    actor = PersistenceActor(settings(tmp_path / "data", batch_max=7), store)
    async with running(actor):
        for i in range(50):
            actor.emit(turn(f"conv-{i % 3}", i))
        await actor.flush()
        assert actor.committed == 50
        assert actor.backlog == 0
        assert [m["content"] for m in store.recent_messages("conv-0", 3)] == [
            "turn 42",
            "turn 45",
            "turn 48",
        ]
    assert arrival_by_conversation(store)["conv-1"] == list(range(1, 50, 3))
    assert not (tmp_path / "data" / "outbox-main.sqlite3").exists()


async def test_lookups_use_the_embedded_store(tmp_path: Path, store: EmbeddedStore) -> None:
    actor = PersistenceActor(settings(tmp_path / "data"), store)
    async with running(actor):
        cid = await actor.agent_joined("room-1", {"user_id": "u-1"})
        actor.emit(turn(cid, 1))
        actor.emit(turn(cid, 2, role="assistant", interrupted=True))
        await actor.flush()
        messages = await actor.recent_messages(cid, 10)
    assert cid.startswith("conv_")
    assert [(m["role"], m["content"], m["interrupted"]) for m in messages] == [
        ("user", "turn 1", False),
        ("assistant", "turn 2", True),
    ]
    assert await actor.recent_messages(cid, 0) == []


async def test_emit_refuses_when_closed_or_full(tmp_path: Path, store: EmbeddedStore) -> None:
    actor = PersistenceActor(settings(tmp_path / "data", queue_max=100), store)
    for i in range(100):
        actor.emit(turn("conv", i))
    with pytest.raises(OutboxFullError, match="queue_max"):
        actor.emit(turn("conv", 100))
    assert actor.backlog == 100
    actor.close()
    with pytest.raises(OutboxFullError, match="closed"):
        actor.emit(turn("conv", 101))
    # run() after close() still commits what was accepted, then returns.
    await actor.run()
    assert actor.committed == 100
    assert len(store.events()) == 100


async def test_an_event_that_is_not_json_is_refused_at_emit_alone(
    tmp_path: Path, store: EmbeddedStore, caplog: pytest.LogCaptureFixture
) -> None:
    before = metric("voice_supervisor_events_invalid_total", outbox="main", field="data")
    actor = PersistenceActor(settings(tmp_path / "data"), store)
    async with running(actor):
        actor.emit(turn("conv", 1))
        actor.emit(turn("conv", 2, content=object()))
        actor.emit(turn("conv", 3))
        await actor.flush()
    assert [e["id"] for e in store.events()] == ["EV_00000001", "EV_00000003"]
    assert (actor.invalid, actor.dead_lettered, actor.committed) == (1, 0, 2)
    assert metric("voice_supervisor_events_invalid_total", outbox="main", field="data") == (
        before + 1
    )
    (record,) = [r for r in caplog.records if r.getMessage().startswith("event refused")]
    assert record.__dict__["field"] == "data.content"


async def test_an_event_the_store_cannot_take_does_not_block_the_others(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    bad_file = {"name": "f", "mime_type": "a/b", "size": 1, "content_b64": "not base64!"}
    actor = PersistenceActor(settings(tmp_path / "data"), store)
    async with running(actor):
        actor.emit(turn("conv", 1))
        actor.emit(Event(EventType.FILE, "room-1", "conv", bad_file, 2.0, "EV_bad"))
        actor.emit(turn("conv", 3))
        await actor.flush()
    assert [e["id"] for e in store.events()] == ["EV_00000001", "EV_00000003"]
    assert actor.dead_lettered == 1


async def test_run_twice_is_a_misuse(tmp_path: Path, store: EmbeddedStore) -> None:
    actor = PersistenceActor(settings(tmp_path / "data"), store)
    async with running(actor):
        with pytest.raises(RuntimeError, match="only once"):
            await actor.run()


# -- with a backend ---------------------------------------------------------------------------


async def test_events_reach_the_backend_once_and_in_order(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend
) -> None:
    before = metric("voice_supervisor_events_shipped_total", outbox="main")
    actor = PersistenceActor(settings(tmp_path / "data", backend, batch_max=64), store)
    async with running(actor):
        for i in range(1000):
            actor.emit(turn(f"conv-{i % 10}", i))
        await actor.wait_empty()
        assert actor.shipped == 1000
        assert actor.oldest_age_s == 0.0
    arrived = arrival_by_conversation(backend.store)
    assert arrived == {f"conv-{c}": list(range(c, 1000, 10)) for c in range(10)}
    assert max(backend.received.values()) == 1
    assert len(backend.batch_requests()) >= 1000 // 64
    assert metric("voice_supervisor_events_shipped_total", outbox="main") - before == 1000
    assert metric("voice_supervisor_outbox_backlog", outbox="main") == 0
    assert store.events() == []  # with a backend, the embedded store is left alone


async def test_every_event_type_is_accepted_by_the_backend(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend
) -> None:
    data: dict[EventType, dict[str, object]] = {
        EventType.TURN: {"role": "assistant", "content": "hi", "latency_ms": {"llm": 12.5}},
        EventType.PARTICIPANT_CONNECTED: {"identity": "alice", "name": "Alice", "kind": 0},
        EventType.PARTICIPANT_DISCONNECTED: {"identity": "alice", "duration_s": 3.5},
        EventType.AGENT_JOINED: {"identity": "voice-agent", "metadata": {}, "attempt": 0},
        EventType.SESSION: {"started_at": 1.0, "ended_at": 2.0, "messages": [], "participants": []},
        EventType.FILE: {
            "name": "a.txt",
            "mime_type": "text/plain",
            "size": 2,
            "content_b64": "aGk=",
        },
        EventType.ERROR: {"code": "stt", "message": "provider failed"},
    }
    actor = PersistenceActor(settings(tmp_path / "data", backend), store)
    async with running(actor):
        for type_, payload in data.items():
            actor.emit(Event(type_, "room-1", "conv-types", payload, 1.0))
        await actor.wait_empty()
    assert [e["type"] for e in backend.store.events()] == [str(t) for t in data]
    assert actor.dead_lettered == 0
    assert len(backend.store.sessions()) == 1
    file_id = backend.store.events(["file"])[0]["id"]
    assert backend.store.file_content(file_id) == b"hi"


async def test_lookups_ask_the_backend(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend
) -> None:
    actor = PersistenceActor(settings(tmp_path / "data", backend), store)
    async with running(actor):
        cid = await actor.agent_joined("room one/β", {"user_id": "u-7"})
        given = await actor.agent_joined("room-2", {"conversation_id": "conv-given"})
        for i in range(5):
            actor.emit(turn(cid, i))
        await actor.wait_empty()
        messages = await actor.recent_messages(cid, 3)
    assert given == "conv-given"
    assert [m["content"] for m in messages] == ["turn 2", "turn 3", "turn 4"]
    paths = [c.raw_path.split("?")[0] for c in backend.captured]
    assert "/v1/rooms/room%20one%2F%CE%B2/agent-joined" in paths
    assert f"/v1/conversations/{cid}/messages" in paths


async def test_history_merges_the_backend_and_the_outbox(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    actor = PersistenceActor(settings(tmp_path / "data", backend), store, clock)
    async with running(actor, close_deadline_s=0.2):
        for i in range(5):
            actor.emit(turn("conv-m", i))
        await actor.wait_empty()
        # The backend keeps failing batches, so the next turns wait in the outbox.
        backend.fail(*[Fault(503)] * 1000)
        for i in range(5, 8):
            actor.emit(turn("conv-m", i))
        await actor.flush()
        messages = await actor.recent_messages("conv-m", 6)
        assert actor.backlog == 3
        assert actor.oldest_age_s > 0
    assert [m["content"] for m in messages] == [f"turn {i}" for i in range(2, 8)]


async def test_lookups_fall_back_when_the_backend_is_down(
    tmp_path: Path,
    store: EmbeddedStore,
    backend: FaultyBackend,
    clock: RecordingClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await backend.down()
    actor = PersistenceActor(settings(tmp_path / "data", backend), store, clock)
    async with running(actor, close_deadline_s=0.2):
        for i in range(3):
            actor.emit(turn("conv-down", i))
        await actor.flush()
        with caplog.at_level(logging.WARNING, logger="actors.persistence"):
            cid = await actor.agent_joined("room-1", {})
            messages = await actor.recent_messages("conv-down", 10)
    assert cid.startswith("conv_")
    assert [m["content"] for m in messages] == ["turn 0", "turn 1", "turn 2"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "backend gave no conversation id; using a local one" in warnings
    assert "backend gave no recent messages; using local history" in warnings


async def test_a_second_process_cannot_share_an_outbox(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend
) -> None:
    first = PersistenceActor(settings(tmp_path / "data", backend), store)
    second = PersistenceActor(settings(tmp_path / "data", backend), store)
    async with running(first):
        with pytest.raises(OutboxLockedError, match="outbox_name"):
            await second.run()
    other = PersistenceActor(settings(tmp_path / "data", backend, outbox_name="w-1"), store)
    async with running(other):
        pass


async def test_flush_wakes_the_writer_before_its_interval(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    actor = PersistenceActor(settings(tmp_path / "data", flush_interval_ms=10_000), store)
    async with running(actor):
        actor.emit(turn("conv", 1))
        with anyio.fail_after(5):
            await actor.flush()
    assert actor.committed == 1


async def test_backlog_and_age_gauges_read_the_actor(tmp_path: Path, store: EmbeddedStore) -> None:
    actor = PersistenceActor(settings(tmp_path / "data", outbox_name="gauges"), store)
    actor.emit(turn("conv", 1))
    assert metric("voice_supervisor_outbox_backlog", outbox="gauges") == 1
    assert metric("voice_supervisor_outbox_oldest_age_seconds", outbox="gauges") >= 0
    async with running(actor):
        await actor.flush()
    assert metric("voice_supervisor_outbox_backlog", outbox="gauges") == 0
    assert not math.isnan(actor.oldest_age_s)
