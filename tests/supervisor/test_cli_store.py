"""``voice-supervisor sessions`` and ``messages`` read the embedded store."""

from __future__ import annotations

import json
from pathlib import Path

from actors import Event, EventType
from actors.persistence import EmbeddedStore
from tests.supervisor.test_config import run_cli


def seed(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text('[persistence]\ndata_dir = "data"\n')
    store = EmbeddedStore(tmp_path / "data" / "store.sqlite3")
    turns = [("user", "hello there", "alice"), ("assistant", "You said: hello there", None)]
    events = [
        Event(
            EventType.TURN,
            "room-a",
            "conv-1",
            {"role": r, "content": c, "speaker": s},
            ts=1_700_000_000 + i,
        )
        for i, (r, c, s) in enumerate(turns)
    ]
    events.append(
        Event(
            EventType.SESSION,
            "room-a",
            "conv-1",
            {
                "room": "room-a",
                "conversation_id": "conv-1",
                "user_id": "u",
                "started_at": 1.7e9,
                "ended_at": 1.7e9 + 12.5,
                "duration_s": 12.5,
                "participants": [{"identity": "alice"}],
                "message_count": 2,
                "messages": [],
            },
            ts=1.7e9 + 12.5,
        )
    )
    store.apply(events)
    store.apply(events)  # idempotent
    store.close()
    return config


def test_sessions_lists_stored_sessions(tmp_path: Path) -> None:
    config = seed(tmp_path)
    result = run_cli("sessions", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    (session,) = json.loads(result.stdout)
    assert session["conversation_id"] == "conv-1" and session["duration_s"] == 12.5
    text = run_cli("sessions", "--config", str(config))
    assert "room-a / conv-1" in text.stdout and "12.5s" in text.stdout


def test_messages_prints_a_conversation(tmp_path: Path) -> None:
    config = seed(tmp_path)
    result = run_cli("messages", "conv-1", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    messages = json.loads(result.stdout)
    assert [(m["role"], m["content"], m["speaker"]) for m in messages] == [
        ("user", "hello there", "alice"),
        ("assistant", "You said: hello there", None),
    ]
    text = run_cli("messages", "conv-1", "--config", str(config)).stdout
    assert "user (alice): hello there" in text
    empty = run_cli("messages", "nope", "--config", str(config)).stdout
    assert "no messages stored for conversation nope" in empty
