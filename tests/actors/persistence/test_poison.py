"""One bad event never stalls the others: refused at emit, set aside by the outbox, or given a
bounded life by the shipper, while an outage dead-letters nothing.

Every test checks what the backend stored (the good events, once, in order per conversation)
and where the bad one went.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from prometheus_client import REGISTRY

from actors import Event, EventType
from actors.persistence import EmbeddedStore, PersistenceActor
from actors.persistence._outbox import Outbox
from tests.actors.persistence.conftest import (
    RecordingClock,
    arrival_by_conversation,
    running,
    settings,
    turn,
)
from tests.fakes.backend import Fault, FaultyBackend

pytestmark = [pytest.mark.anyio, pytest.mark.faults]

LONE_SURROGATE = "\ud800"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def stored_ids(backend: FaultyBackend) -> list[int]:
    return sorted(i for ids in arrival_by_conversation(backend.store).values() for i in ids)


def in_order(backend: FaultyBackend) -> bool:
    return all(ids == sorted(ids) for ids in arrival_by_conversation(backend.store).values())


async def test_a_lone_surrogate_is_refused_at_emit_and_the_batch_around_it_arrives(
    tmp_path: Path,
    store: EmbeddedStore,
    backend: FaultyBackend,
    clock: RecordingClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = {
        field: metric("voice_supervisor_events_invalid_total", outbox="main", field=field)
        for field in ("conversation_id", "data")
    }
    actor = PersistenceActor(settings(tmp_path / "data", backend), store, clock)
    async with running(actor):
        for i in range(10):
            if i == 3:  # room metadata {"conversation_id": "\ud800"}
                actor.emit(turn(LONE_SURROGATE, i))
            elif i == 6:  # a transcript with a broken character
                actor.emit(turn("conv-0", i, content=f"caf{LONE_SURROGATE}"))
            else:
                actor.emit(turn("conv-0", i))
        with anyio.fail_after(20):
            await actor.wait_empty()
    assert arrival_by_conversation(backend.store) == {"conv-0": [0, 1, 2, 4, 5, 7, 8, 9]}
    assert (actor.invalid, actor.committed, actor.dead_lettered) == (2, 8, 0)
    for field in ("conversation_id", "data"):
        after = metric("voice_supervisor_events_invalid_total", outbox="main", field=field)
        assert after == before[field] + 1
    refusals = [r for r in caplog.records if r.getMessage().startswith("event refused")]
    assert [r.__dict__["field"] for r in refusals] == ["conversation_id", "data.content"]
    # The log names the field, never its value.
    assert not any(LONE_SURROGATE in str(r.__dict__) or "caf" in str(r.__dict__) for r in refusals)


def test_an_event_the_outbox_cannot_commit_is_dead_lettered_alone(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "outbox-a.sqlite3")
    try:
        events = [turn("c", i) for i in range(9)]
        events[5] = turn(LONE_SURROGATE, 5)  # SQLite refuses the conversation_id column
        bodies = [json.dumps(e.to_json()) for e in events]  # as if it slipped past emit()
        assert outbox.append(events, now=1.0, bodies=bodies) == 1
        assert [r.id for r in outbox.head(20, 1 << 20)] == [
            f"EV_{i:08d}" for i in range(9) if i != 5
        ]
        assert outbox.count == 8
        (letter,) = outbox.dead_letters()
        assert letter["id"] == "EV_00000005"
        assert letter["reason"] == "cannot be stored in the outbox: UnicodeEncodeError"
        assert letter["conversation_id"] == "\\ud800"  # kept, escaped
        assert json.loads(letter["body"])["data"]["content"] == "turn 5"
    finally:
        outbox.close()


async def test_a_poison_event_that_slips_past_emit_does_not_stall_its_neighbours(
    tmp_path: Path,
    store: EmbeddedStore,
    backend: FaultyBackend,
    clock: RecordingClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A check at emit() that misses something (here: none at all) must not bring back the
    # stall: the outbox commits the others and dead-letters the event alone.
    monkeypatch.setattr(
        "actors.persistence._actor.serialise", lambda e: json.dumps(e.to_json(), default=repr)
    )
    actor = PersistenceActor(settings(tmp_path / "data", backend), store, clock)
    async with running(actor):
        for i in range(12):
            actor.emit(turn(LONE_SURROGATE if i == 7 else f"conv-{i % 3}", i))
        with anyio.fail_after(20):
            await actor.flush()
            await actor.wait_empty()
        letters = await actor.dead_letters()
    assert stored_ids(backend) == [i for i in range(12) if i != 7] and in_order(backend)
    assert [(d["id"], d["reason"]) for d in letters] == [
        ("EV_00000007", "cannot be stored in the outbox: UnicodeEncodeError")
    ]
    assert actor.dead_lettered == 1
    assert clock.sleeps == []  # no commit was retried


async def test_an_event_the_backend_always_fails_is_dead_lettered_after_max_attempts(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    before = metric(
        "voice_supervisor_events_dead_lettered_total", outbox="main", reason="exhausted"
    )
    backend.fail_ids["EV_00000005"] = Fault(500)
    actor = PersistenceActor(settings(tmp_path / "data", backend, max_attempts=3), store, clock)
    async with running(actor):
        for i in range(16):
            actor.emit(turn(f"conv-{i % 4}", i))
        with anyio.fail_after(20):
            await actor.wait_empty()
        letters = await actor.dead_letters()
    assert stored_ids(backend) == [i for i in range(16) if i != 5] and in_order(backend)
    (letter,) = letters
    assert (letter["id"], letter["status"]) == ("EV_00000005", 500)
    # Three attempts in its batch of 16, then one per halving (8, 4, 2, alone).
    assert backend.received["EV_00000005"] == 3 + 4
    assert letter["reason"].startswith("failed 7 attempts over ")
    assert "answered 500" in letter["reason"]
    assert actor.dead_lettered == 1
    after = metric("voice_supervisor_events_dead_lettered_total", outbox="main", reason="exhausted")
    assert after == before + 1


async def test_a_poison_event_at_the_head_is_judged_by_a_probe_of_other_conversations(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    # Nothing ahead of it succeeds while it is bisected, so the events behind it are sent
    # once, as a probe; those of its own conversation wait until it is settled.
    backend.fail_ids["EV_00000000"] = Fault(503)
    actor = PersistenceActor(settings(tmp_path / "data", backend, max_attempts=2), store, clock)
    async with running(actor):
        for i in range(8):
            actor.emit(turn(f"conv-{i % 2}", i))
        with anyio.fail_after(20):
            await actor.wait_empty()
        letters = await actor.dead_letters()
    assert [d["id"] for d in letters] == ["EV_00000000"]
    assert arrival_by_conversation(backend.store) == {"conv-0": [2, 4, 6], "conv-1": [1, 3, 5, 7]}
    probe = next(c for c in backend.batch_requests() if c.status == 200)
    assert [e["conversation_id"] for e in json.loads(probe.body)["events"]] == ["conv-1"] * 4


async def test_retry_after_zero_does_not_spin(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    backend.fail_ids["EV_00000003"] = Fault(503, retry_after="0")
    s = settings(tmp_path / "data", backend, max_attempts=4, retry_initial_s=0.05, retry_max_s=1)
    actor = PersistenceActor(s, store, clock)
    async with running(actor):
        for i in range(8):
            actor.emit(turn("conv-0", i))
        with anyio.fail_after(20):
            await actor.wait_empty()
    assert stored_ids(backend) == [0, 1, 2, 4, 5, 6, 7] and actor.dead_lettered == 1
    failed = [c for c in backend.batch_requests() if c.status == 503]
    # Each failed request but the last (after which the event was dead-lettered) was followed
    # by a wait, and none was shorter than retry_initial_s.
    assert len(failed) == len(clock.sleeps) + 1
    assert min(clock.sleeps) == 0.05
    assert len(failed) == 4 + 3  # its batch's attempts, then one per halving of 8


async def test_an_outage_dead_letters_nothing(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    # Every request fails, many times an event's life: the backend's fault, not the events'.
    backend.fail(*[Fault(503, retry_after="0")] * 40)
    actor = PersistenceActor(settings(tmp_path / "data", backend, max_attempts=2), store, clock)
    async with running(actor):
        for i in range(24):
            actor.emit(turn(f"conv-{i % 3}", i))
        with anyio.fail_after(20):
            await actor.wait_empty()
    assert stored_ids(backend) == list(range(24)) and in_order(backend)
    assert actor.dead_lettered == 0
    assert len([c for c in backend.batch_requests() if c.status == 503]) == 40
    assert min(clock.sleeps) >= 0.01  # retry_initial_s of the test settings


async def test_a_replayed_dead_letter_reaches_a_running_actor(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend, clock: RecordingClock
) -> None:
    from actors.persistence import replay_dead_letters

    data = tmp_path / "data"
    backend.reject_ids.add("EV_00000002")
    actor = PersistenceActor(settings(data, backend), store, clock)
    async with running(actor):
        for i in range(4):
            actor.emit(turn("conv-0", i))
        with anyio.fail_after(20):
            await actor.wait_empty()
        assert [d["id"] for d in await actor.dead_letters()] == ["EV_00000002"]
        backend.reject_ids.clear()  # the backend was fixed
        requests = len(backend.batch_requests())
        replayed = await anyio.to_thread.run_sync(replay_dead_letters, data, None, 2.0)
        assert replayed == (1, set())
        with anyio.fail_after(20):  # the idle shipper looks for such rows every two seconds
            await backend.wait_requests(requests + 1)
            await actor.wait_empty()
        assert await actor.dead_letters() == []
    assert arrival_by_conversation(backend.store) == {"conv-0": [0, 1, 3, 2]}


async def test_a_nan_ts_or_a_key_that_is_not_json_is_refused_at_emit(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    actor = PersistenceActor(settings(tmp_path / "data"), store)
    async with running(actor):
        actor.emit(Event(EventType.TURN, "room", "conv", {"role": "user"}, float("nan"), "EV_n"))
        actor.emit(Event(EventType.TURN, "room", "conv", {"meta": {1j: "x"}}, 1.0, "EV_c"))
        actor.emit(turn("conv", 1))
        await actor.flush()
    assert [e["id"] for e in store.events()] == ["EV_00000001"]
    assert actor.invalid == 2
