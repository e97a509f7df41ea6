"""config.toml validation: strict keys, clear messages, env secrets, the shipped file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actors import ConfigError
from supervisor import load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_config_is_valid_and_matches_the_defaults() -> None:
    shipped = load_config(ROOT / "config.toml", environ={})
    defaults = parse_config({}, environ={})
    assert shipped.model_dump(exclude={"persistence"}) == defaults.model_dump(
        exclude={"persistence"}
    )
    assert shipped.persistence.data_dir == (ROOT / "data").resolve()
    # Operators install this file: the playground is off in it (`make run` passes --playground).
    assert not shipped.playground.enabled and not shipped.playground.allow_remote


def test_unknown_keys_name_the_key_and_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"agent": {"identiy": "x"}, "extra": {}}, environ={})
    text = str(info.value)
    assert "[agent] identiy: unknown key" in text
    assert "identity" in text.split("[agent] identiy")[1]
    assert "extra: unknown key" in text


def test_bad_values_name_the_key_the_value_and_what_is_allowed() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "supervisor": {"max_rooms": 0, "drain_timeout_s": "soon"},
                "logging": {"level": "LOUD"},
                "livekit": {"url": "127.0.0.1:7880"},
            },
            environ={},
        )
    text = str(info.value)
    assert "4 invalid setting(s)" in text
    assert "[supervisor] max_rooms = 0: Input should be greater than or equal to 1" in text
    assert "[supervisor] drain_timeout_s = 'soon'" in text
    assert "[logging] level = 'LOUD'" in text and "'INFO'" in text
    assert "[livekit] url = '127.0.0.1:7880'" in text and "ws://" in text


def test_secrets_come_from_the_environment_and_never_show_in_errors() -> None:
    config = parse_config({}, environ={"LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s3cr3t"})
    assert config.livekit.api_key == "k"
    assert config.livekit.api_secret.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(config)
    with pytest.raises(ConfigError) as info:
        parse_config({"livekit": {"api_secret": 12345}}, environ={})
    assert "12345" not in str(info.value)


def test_a_file_that_is_not_toml_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[agent\nidentity = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "missing.toml")


def test_room_rules_select_rooms() -> None:
    agent = parse_config(
        {"agent": {"rooms": ["support-*", "vip"], "skip_rooms": ["*-test"]}}, environ={}
    ).agent
    assert agent.wants("support-1") and agent.wants("vip")
    assert not agent.wants("sales-1") and not agent.wants("support-test")


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_check_config_cli(tmp_path: Path) -> None:
    ok = run_cli("check-config", str(ROOT / "config.toml"))
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nport = 70000\nhots = "x"\n')
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2
    assert "[server] port = 70000" in result.stderr
    assert "[server] hots: unknown key" in result.stderr


def test_the_configuration_reference_is_up_to_date() -> None:
    from supervisor._config_docs import render_config_reference

    shipped = (ROOT / "docs" / "configuration.md").read_text()
    assert shipped.strip() == render_config_reference().strip(), (
        "docs/configuration.md is stale: run `python -m supervisor config-docs > "
        "docs/configuration.md`"
    )
