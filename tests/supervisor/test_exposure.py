"""Dev-only settings stay on loopback: the dev secret and the playground are refused on a
non-loopback ``[server] host`` (by ``check-config`` too), ``run --playground`` is the dev
overlay, the dev key pair is announced once instead of PyJWT's warnings, and the shipped
config.toml says truthfully what it holds."""

from __future__ import annotations

import logging
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from jwt.warnings import InsecureKeyLengthWarning
from livekit import api

from actors import ConfigError
from supervisor import Daemon, LiveKitSettings, load_config, parse_config
from supervisor._cli import main
from supervisor._exposure import is_loopback, note_dev_keys

ROOT = Path(__file__).resolve().parents[2]
LONG_SECRET = "a-production-secret-that-is-long-enough-for-hs256"
SECRET_VARIABLES = (
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "BACKEND_TOKEN",
    "DEEPGRAM_API_KEY",
    "OPENAI_API_KEY",
    "CARTESIA_API_KEY",
    "REDIS_URL",
)


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


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("", False),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("localhost.example.org", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("secret", ["secret", "devkey"])
def test_the_dev_secret_is_refused_on_a_non_loopback_host(secret: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"server": {"host": "0.0.0.0"}, "livekit": {"api_secret": secret}}, environ={})
    message = str(info.value)
    assert "[livekit] api_secret" in message and "LIVEKIT_API_SECRET" in message


def test_a_real_secret_or_a_loopback_host_is_fine() -> None:
    from_env = parse_config({"server": {"host": "0.0.0.0"}}, environ={"LIVEKIT_API_SECRET": "x"})
    assert from_env.livekit.api_secret.get_secret_value() == "x"
    assert parse_config({"server": {"host": "::1"}}, environ={}).server.host == "::1"


def test_the_playground_is_refused_on_a_non_loopback_host() -> None:
    data: dict[str, dict[str, object]] = {
        "server": {"host": "192.168.1.20"},
        "livekit": {"api_secret": LONG_SECRET},
        "playground": {"enabled": True},
    }
    with pytest.raises(ConfigError, match=r"\[playground\] allow_remote = true"):
        parse_config(data, environ={})
    data["playground"]["allow_remote"] = True
    assert parse_config(data, environ={}).playground.allow_remote
    data["playground"] = {"enabled": False}
    assert not parse_config(data, environ={}).playground.enabled


def test_check_config_reports_every_unsafe_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIVEKIT_API_SECRET", raising=False)
    path = tmp_path / "config.toml"
    path.write_text('[server]\nhost = "0.0.0.0"\n[playground]\nenabled = true\n')
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "2 setting(s) unsafe beyond loopback" in err
    assert "[livekit] api_secret" in err and "[playground] allow_remote" in err


def test_run_playground_is_refused_on_a_non_loopback_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dev overlay goes through the same checks: refused before anything starts."""
    monkeypatch.delenv("LIVEKIT_API_SECRET", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(f'[server]\nhost = "0.0.0.0"\n[livekit]\napi_secret = "{LONG_SECRET}"\n')
    assert main(["check-config", str(path)]) == 0
    assert main(["run", "--config", str(path), "--playground"]) == 2
    assert "[playground] allow_remote" in capsys.readouterr().err


def test_the_playground_overlay_survives_a_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[agent]\nrooms = ["a-*"]\n')
    overrides = {"playground": {"enabled": True}}
    config = load_config(path, environ={}, overrides=overrides)
    assert config.playground.enabled and config.agent.rooms == ("a-*",)
    daemon = Daemon(config, config_path=path, config_overrides=overrides)
    path.write_text('[agent]\nrooms = ["b-*"]\n')
    with caplog.at_level(logging.INFO):
        assert daemon.reload()
    assert daemon.config.agent.rooms == ("b-*",) and daemon.config.playground.enabled
    assert not [r for r in caplog.records if "only after a restart" in r.getMessage()]


def test_the_dev_key_pair_is_one_log_line_instead_of_pyjwt_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def sign(secret: str) -> str:
        return api.AccessToken("devkey", secret).with_identity("x").to_jwt()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        note_dev_keys(LiveKitSettings(api_secret=LONG_SECRET))
        with pytest.warns(InsecureKeyLengthWarning):
            sign("secret")
        with caplog.at_level(logging.WARNING, logger="supervisor"):
            note_dev_keys(LiveKitSettings())
        for _token in range(3):
            sign("secret")  # no warning: "error" would raise it
    (line,) = [r.getMessage() for r in caplog.records]
    assert "dev key pair in use" in line and "LIVEKIT_API_SECRET" in line


def test_the_shipped_config_keeps_the_playground_off_and_names_every_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in SECRET_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    text = (ROOT / "config.toml").read_text()
    assert tomllib.loads(text)["playground"]["enabled"] is False
    assert main(["check-config", str(ROOT / "config.toml")]) == 0
    assert "OK" in capsys.readouterr().out
    header = " ".join(text.split("\n\n")[0].splitlines())  # the comment block on top
    assert "every value below is its default" in header
    for variable in SECRET_VARIABLES:
        assert variable in header, variable
    from supervisor._config import _ENV_SECRETS

    assert {var for var, _section, _key in _ENV_SECRETS} == set(SECRET_VARIABLES)
