"""The durable outbox on its own: order, batches, dead letters, the lock, orphan adoption."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from actors.persistence import OutboxLockedError
from actors.persistence._outbox import Outbox, OutboxRow, _try_lock
from tests.actors.persistence.conftest import turn


def test_rows_come_back_in_commit_order_until_deleted(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "outbox-a.sqlite3")
    try:
        assert outbox.append([turn("c", i) for i in range(5)], now=10.0) == 0
        assert outbox.append([turn("c", i) for i in range(5, 8)], now=11.0) == 0
        assert outbox.count == 8
        assert outbox.oldest_enqueued_at == 10.0
        head = outbox.head(limit=3, max_bytes=1 << 20)
        assert [r.id for r in head] == ["EV_00000000", "EV_00000001", "EV_00000002"]
        assert json.loads(head[0].body)["data"]["content"] == "turn 0"
        after = outbox.head(limit=2, max_bytes=1 << 20, after_seq=head[1].seq)
        assert [r.id for r in after] == ["EV_00000002", "EV_00000003"]
        assert outbox.delete_ranges([(head[0].seq, head[-1].seq)]) == 3
        assert [r.id for r in outbox.head(limit=100, max_bytes=1 << 20)] == [
            f"EV_{i:08d}" for i in range(3, 8)
        ]
        rest = outbox.head(limit=100, max_bytes=1 << 20)
        outbox.delete_ranges([(rest[0].seq, rest[4].seq)])
        assert outbox.count == 0
        assert outbox.oldest_enqueued_at is None
        # Sequence numbers never go back, even once the table is empty.
        outbox.append([turn("c", 99)], now=12.0)
        assert outbox.head(limit=1, max_bytes=1 << 20)[0].seq > rest[-1].seq
    finally:
        outbox.close()


def test_a_batch_stops_at_max_bytes_but_never_comes_back_empty(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "outbox-a.sqlite3")
    try:
        outbox.append([turn("c", i, content="x" * 1000) for i in range(10)], now=1.0)
        assert len(outbox.head(limit=10, max_bytes=3500)) == 3
        assert len(outbox.head(limit=10, max_bytes=10)) == 1
    finally:
        outbox.close()


def test_events_that_are_not_json_go_straight_to_dead_letters(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "outbox-a.sqlite3")
    try:
        dead = outbox.append(
            [turn("c", 1), turn("c", 2, content=b"raw"), turn("c", 3, content={1, 2})], now=1.0
        )
        assert dead == 2
        assert [r.id for r in outbox.head(10, 1 << 20)] == ["EV_00000001"]
        letters = outbox.dead_letters()
        assert [(d["id"], d["status"]) for d in letters] == [
            ("EV_00000002", None),
            ("EV_00000003", None),
        ]
        assert {d["reason"] for d in letters} == {"not JSON-serialisable: TypeError"}
    finally:
        outbox.close()


def test_dead_letter_moves_one_row_with_its_reason(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "outbox-a.sqlite3")
    try:
        outbox.append([turn("c", i) for i in range(3)], now=1.0)
        middle = outbox.head(3, 1 << 20)[1]
        outbox.dead_letter(middle, status=400, reason="data.role is wrong", now=2.0)
        assert outbox.count == 2
        assert [r.id for r in outbox.head(3, 1 << 20)] == ["EV_00000000", "EV_00000002"]
        (letter,) = outbox.dead_letters()
        assert (letter["id"], letter["status"], letter["reason"]) == (
            "EV_00000001",
            400,
            "data.role is wrong",
        )
        assert json.loads(letter["body"])["id"] == "EV_00000001"
    finally:
        outbox.close()


def test_one_process_per_outbox_file(tmp_path: Path) -> None:
    path = tmp_path / "outbox-a.sqlite3"
    first = Outbox.open(path)
    with pytest.raises(OutboxLockedError, match="outbox_name"):
        Outbox.open(path, lock_wait_s=0.05)
    first.close()
    first.close()  # idempotent
    second = Outbox.open(path)
    second.close()


def test_a_lock_held_for_a_moment_by_a_sibling_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "outbox-a.sqlite3"
    sibling = _try_lock(path)  # what a starting sibling does while it looks for orphans
    assert sibling is not None
    release = threading.Timer(0.2, os.close, (sibling,))
    release.start()
    try:
        outbox = Outbox.open(path)
    finally:
        release.join()
    outbox.close()


def test_an_orphaned_outbox_is_adopted_after_our_own_rows(tmp_path: Path) -> None:
    ours = Outbox.open(tmp_path / "outbox-main.sqlite3")
    ours.append([turn("c", 10)], now=1.0)
    # While ours is open (locked), the other process cannot adopt it.
    orphan = Outbox.open(tmp_path / "outbox-gone.sqlite3")
    orphan.append([turn("c", i) for i in range(3)], now=2.0)
    orphan.dead_letter(orphan.head(1, 1 << 20)[0], status=400, reason="bad", now=3.0)
    orphan.close()
    ours.close()
    ours = Outbox.open(tmp_path / "outbox-main.sqlite3")
    try:
        assert [r.id for r in ours.head(10, 1 << 20)] == [
            "EV_00000010",
            "EV_00000001",
            "EV_00000002",
        ]
        assert [d["id"] for d in ours.dead_letters()] == ["EV_00000000"]
        assert ours.count == 3
        again = Outbox.open(tmp_path / "outbox-gone.sqlite3")
        try:
            assert again.count == 0
            assert again.dead_letters() == []
        finally:
            again.close()
    finally:
        ours.close()


def test_a_live_outbox_is_not_adopted(tmp_path: Path) -> None:
    live = Outbox.open(tmp_path / "outbox-live.sqlite3")
    try:
        live.append([turn("c", 1)], now=1.0)
        ours = Outbox.open(tmp_path / "outbox-main.sqlite3")
        assert ours.count == 0
        ours.close()
        assert live.count == 1
    finally:
        live.close()


def test_pending_turns_are_messages_of_one_conversation(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "outbox-a.sqlite3")
    try:
        outbox.append(
            [turn("c1", 1), turn("c2", 2), turn("c1", 3, role="assistant", interrupted=True)],
            now=1.0,
        )
        assert outbox.pending_turns("c1", 10) == [
            {
                "role": "user",
                "content": "turn 1",
                "ts": 1_700_000_001.0,
                "speaker": "alice",
                "interrupted": False,
            },
            {
                "role": "assistant",
                "content": "turn 3",
                "ts": 1_700_000_003.0,
                "speaker": "alice",
                "interrupted": True,
            },
        ]
        assert [m["content"] for m in outbox.pending_turns("c1", 1)] == ["turn 3"]
    finally:
        outbox.close()
    assert outbox.pending_turns("c1", 10) == []
    assert OutboxRow(1, "x", "{}").seq == 1
