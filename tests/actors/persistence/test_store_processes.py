"""Room workers are separate processes writing one embedded store: arrival order stays one order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from actors.persistence import EmbeddedStore
from tests.actors.persistence.conftest import turn


def test_two_writers_share_one_received_order(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    first, second = EmbeddedStore(path), EmbeddedStore(path)  # as two workers open it
    try:
        for index in range(6):
            writer = first if index % 2 == 0 else second
            writer.apply([turn(f"conv-{index % 2}", index)])
    finally:
        first.close()
        second.close()
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT id, received_seq FROM events ORDER BY received_seq").fetchall()
    finally:
        db.close()
    assert [seq for _, seq in rows] == [1, 2, 3, 4, 5, 6]
    assert [event_id for event_id, _ in rows] == [f"EV_{i:08d}" for i in range(6)]
