"""``voice-supervisor dead-letters`` lists the dead letters of every outbox in data_dir, and
``dead-letters replay`` puts them back in their outbox."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from actors.persistence._outbox import Outbox
from tests.actors.persistence.conftest import turn
from tests.supervisor.test_config import run_cli


def seed(tmp_path: Path) -> Path:
    """Two outboxes, the daemon's and a worker's, each with dead letters and waiting rows."""
    config = tmp_path / "config.toml"
    config.write_text('[persistence]\ndata_dir = "data"\n')
    data = tmp_path / "data"
    # Both open at once: an outbox opened alone adopts a sibling whose owner is gone.
    outboxes = [Outbox.open(data / f"outbox-{name}.sqlite3") for name in ("main", "worker-0")]
    try:
        for outbox, first in zip(outboxes, (0, 10), strict=True):
            outbox.append([turn("conv-1", i) for i in range(first, first + 3)], now=1.7e9)
            rows = outbox.head(10, 1 << 20)
            outbox.dead_letter(rows[1], status=500, reason="failed 8 attempts", now=1.7e9 + 60)
            outbox.dead_letter(rows[2], status=400, reason="data.role is wrong", now=1.7e9 + 61)
    finally:
        for outbox in outboxes:
            outbox.close()
    return config


def outbox_ids(path: Path) -> tuple[list[str], list[str]]:
    """The ids waiting in an outbox file and those in its dead letters, read as the CLI does."""
    with closing(sqlite3.connect(path)) as db:
        waiting = [r[0] for r in db.execute("SELECT id FROM outbox ORDER BY seq")]
        dead = [r[0] for r in db.execute("SELECT id FROM dead_letters ORDER BY seq")]
    return waiting, dead


def test_dead_letters_lists_every_outbox(tmp_path: Path) -> None:
    config = seed(tmp_path)
    listed = run_cli("dead-letters", "--config", str(config), "--json")
    assert listed.returncode == 0, listed.stderr
    letters = json.loads(listed.stdout)
    assert [(d["outbox"], d["id"], d["status"]) for d in letters] == [
        ("outbox-main.sqlite3", "EV_00000001", 500),
        ("outbox-main.sqlite3", "EV_00000002", 400),
        ("outbox-worker-0.sqlite3", "EV_00000011", 500),
        ("outbox-worker-0.sqlite3", "EV_00000012", 400),
    ]
    assert letters[0]["reason"] == "failed 8 attempts"
    assert letters[0]["event"]["data"]["content"] == "turn 1"
    text = run_cli("dead-letters", "--config", str(config))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 5 and "reason" in lines[0]
    assert "outbox-worker-0.sqlite3" in lines[3] and "EV_00000011" in lines[3]
    assert "data.role is wrong" in lines[4]


def test_dead_letters_replay_puts_them_back(tmp_path: Path) -> None:
    config = seed(tmp_path)
    data = tmp_path / "data"
    one = run_cli("dead-letters", "replay", "EV_00000011", "--config", str(config))
    assert one.returncode == 0, one.stderr
    assert one.stdout.strip() == "replayed 1 dead letter"
    # Put back at the end of its own outbox, behind what waited there.
    assert outbox_ids(data / "outbox-worker-0.sqlite3") == (
        ["EV_00000010", "EV_00000011"],
        ["EV_00000012"],
    )
    missing = run_cli("dead-letters", "--config", str(config), "replay", "EV_nope", "EV_00000002")
    assert missing.returncode == 1
    assert missing.stdout.strip() == "replayed 1 dead letter"
    assert "EV_nope" in missing.stderr
    rest = run_cli("dead-letters", "replay", "--config", str(config))
    assert rest.returncode == 0, rest.stderr
    assert rest.stdout.strip() == "replayed 2 dead letters"
    assert outbox_ids(data / "outbox-main.sqlite3") == (
        ["EV_00000000", "EV_00000002", "EV_00000001"],
        [],
    )
    empty = run_cli("dead-letters", "--config", str(config))
    assert empty.stdout.startswith("no dead letters in ")
