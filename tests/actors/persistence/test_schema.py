"""Schema versions of the SQLite files: new files are stamped, files from before versions are
stamped as they are (rows kept), forward migrations run once, and a file a later release wrote
is refused by the daemon's persistence, the CLI and ``check-config``, naming the file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from actors import Event, EventType
from actors.persistence import (
    OUTBOX_SCHEMA_VERSION,
    STORE_SCHEMA_VERSION,
    EmbeddedStore,
    StoreTooNewError,
)
from actors.persistence._outbox import Outbox
from actors.persistence._schema import OUTBOX_MIGRATIONS, STORE_MIGRATIONS, migrate
from supervisor._config import parse_config
from supervisor._preflight import config_problems


def _version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def _set_version(path: Path, version: int) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {version}")
        db.commit()


def _event(n: int) -> Event:
    return Event(EventType.TURN, "r", "c", {"role": "user", "content": f"hi {n}"}, float(n))


def test_new_files_carry_this_release_s_schema_version(tmp_path: Path) -> None:
    EmbeddedStore(tmp_path / "store.sqlite3").close()
    Outbox.open(tmp_path / "outbox-main.sqlite3").close()
    assert _version(tmp_path / "store.sqlite3") == STORE_SCHEMA_VERSION >= 1
    assert _version(tmp_path / "outbox-main.sqlite3") == OUTBOX_SCHEMA_VERSION >= 1


def test_a_file_from_before_versions_is_stamped_and_keeps_its_rows(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store.sqlite3")
    store.apply([_event(1)])
    store.close()
    outbox = Outbox.open(tmp_path / "outbox-main.sqlite3")
    outbox.append([_event(2)], now=2.0)
    outbox.close()
    for name in ("store.sqlite3", "outbox-main.sqlite3"):
        _set_version(tmp_path / name, 0)  # as the releases before versions left them
    store = EmbeddedStore(tmp_path / "store.sqlite3")
    assert [m["content"] for m in store.recent_messages("c", 10)] == ["hi 1"]
    store.close()
    outbox = Outbox.open(tmp_path / "outbox-main.sqlite3")
    assert outbox.count == 1
    outbox.close()
    assert _version(tmp_path / "store.sqlite3") == STORE_SCHEMA_VERSION
    assert _version(tmp_path / "outbox-main.sqlite3") == OUTBOX_SCHEMA_VERSION


def test_a_forward_migration_runs_once_and_keeps_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    store = EmbeddedStore(path)
    store.apply([_event(1)])
    store.close()
    later = (*STORE_MIGRATIONS, ("ALTER TABLE messages ADD COLUMN lang TEXT DEFAULT 'en'",))
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        assert migrate(db, path, later) == STORE_SCHEMA_VERSION
        assert migrate(db, path, later) == len(later)  # nothing left to do: no second ALTER
        rows = db.execute("SELECT content, lang FROM messages").fetchall()
    assert rows == [("hi 1", "en")]
    assert _version(path) == len(later)


@pytest.mark.parametrize(
    "name", ["store.sqlite3", "outbox-main.sqlite3", "outbox-worker-0.sqlite3"]
)
def test_a_file_written_by_a_later_release_is_refused(tmp_path: Path, name: str) -> None:
    EmbeddedStore(tmp_path / "store.sqlite3").close()
    Outbox.open(tmp_path / "outbox-worker-0.sqlite3").close()  # a worker's, adopted at start
    Outbox.open(tmp_path / "outbox-main.sqlite3").close()
    newer = max(STORE_SCHEMA_VERSION, OUTBOX_SCHEMA_VERSION) + 7
    _set_version(tmp_path / name, newer)
    with pytest.raises(StoreTooNewError) as refused:
        EmbeddedStore(tmp_path / "store.sqlite3").close()
        Outbox.open(tmp_path / "outbox-main.sqlite3").close()
    assert refused.value.path == tmp_path / name and refused.value.found == newer
    message = str(refused.value)
    assert name in message and f"schema version {newer} is newer" in message
    assert "Upgrade and rollback" in message
    assert _version(tmp_path / name) == newer  # left as it was
    # check-config says so before a start, naming the setting and the file.
    config = parse_config({"persistence": {"data_dir": str(tmp_path)}}, environ={})
    problems = [p for p in config_problems(config, providers=False) if "schema" in p]
    assert len(problems) == 1 and problems[0].startswith("[persistence] data_dir: ")
    assert name in problems[0]


def test_the_cli_exits_2_on_a_store_a_later_release_wrote(tmp_path: Path) -> None:
    EmbeddedStore(tmp_path / "store.sqlite3").close()
    _set_version(tmp_path / "store.sqlite3", STORE_SCHEMA_VERSION + 1)
    config = tmp_path / "config.toml"
    config.write_text(f'[persistence]\ndata_dir = "{tmp_path}"\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "supervisor", "sessions", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "store.sqlite3: schema version" in done.stderr and "Traceback" not in done.stderr


def test_the_migrations_only_ever_grow() -> None:
    # A released migration is never edited: files in the field are at every version so far.
    assert OUTBOX_SCHEMA_VERSION == len(OUTBOX_MIGRATIONS) == 1
    assert STORE_SCHEMA_VERSION == len(STORE_MIGRATIONS) == 1
