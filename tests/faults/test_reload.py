"""What ``Daemon.reload`` (SIGHUP) takes from a new file, and what it refuses, in process."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor import Daemon, load_config

pytestmark = [pytest.mark.faults]

BASE = """
[agent]
rooms = ["alpha-*"]
[voice]
enabled = false
min_interrupt_s = 0.4
[data]
file_max_mb = 5.0
[supervisor]
drain_timeout_s = 10.0
[logging]
level = "INFO"
"""


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """``reload`` reconfigures logging for the whole process: undo it after each test."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    named = {name: logging.getLogger(name).level for name in ("livekit", "aiohttp.access")}
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
        for name, named_level in named.items():
            logging.getLogger(name).setLevel(named_level)


def daemon_with(tmp_path: Path, text: str) -> tuple[Daemon, Path]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return Daemon(load_config(path, environ={}), config_path=path), path


def test_reload_applies_agent_voice_data_and_logging_for_new_rooms(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon, path = daemon_with(tmp_path, BASE)
    path.write_text(
        BASE.replace('["alpha-*"]', '["alpha-*", "beta-*"]')
        .replace("min_interrupt_s = 0.4", "min_interrupt_s = 0.8")
        .replace("file_max_mb = 5.0", "file_max_mb = 1.0")
        .replace('level = "INFO"', 'level = "WARNING"')
    )
    with caplog.at_level(logging.INFO):
        assert daemon.reload()
    assert daemon.config.agent.wants("beta-1")
    assert daemon.config.voice.min_interrupt_s == 0.8
    assert daemon.config.data.file_max_mb == 1.0
    assert daemon.config.logging.level == "WARNING"
    assert logging.getLogger().level == logging.WARNING
    assert not [r for r in caplog.records if "restart" in r.getMessage()]


def test_reload_reports_what_needs_a_restart_and_keeps_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon, path = daemon_with(tmp_path, BASE)
    path.write_text(
        BASE.replace("drain_timeout_s = 10.0", "drain_timeout_s = 20.0").replace(
            "enabled = false", "enabled = true"
        )
    )
    with caplog.at_level(logging.INFO):
        daemon.reload()
    (warning,) = [r for r in caplog.records if "after a restart" in r.getMessage()]
    assert warning.__dict__["sections"] == ["supervisor", "voice.enabled/providers_factory"]
    assert daemon.config.supervisor.drain_timeout_s == 10.0
    assert daemon.config.voice.enabled is False


@pytest.mark.parametrize(
    "bad",
    [b"[agent]\nrooms = 5\n", b"[nonsense]\n", b"\xff\xfe", b"[agent"],
    ids=["invalid-value", "unknown-section", "not-utf8", "not-toml"],
)
def test_a_rejected_reload_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, bad: bytes
) -> None:
    daemon, path = daemon_with(tmp_path, BASE)
    before = daemon.config
    path.write_bytes(bad)
    with caplog.at_level(logging.INFO):
        assert not daemon.reload()
    assert daemon.config is before
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "config reload rejected; keeping the running config"
    assert str(path) in record.__dict__["error"]


def test_a_missing_file_is_rejected_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    daemon, path = daemon_with(tmp_path, BASE)
    path.unlink()
    with caplog.at_level(logging.INFO):
        daemon.reload()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "config reload rejected; keeping the running config"
    ]
