"""What ``deploy/`` ships: the production config template loads (secrets from the environment,
none in the file) and builds its provider chains; both systemd units pass
``systemd-analyze verify``, and the templated one keeps every hardening line of the other."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from supervisor._config import load_config
from supervisor._preflight import provider_problems

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
_SECRETS = {
    "LIVEKIT_API_KEY": "APIprod",
    "LIVEKIT_API_SECRET": "a-production-secret-of-enough-length-0123",
    "BACKEND_TOKEN": "token",
    "DEEPGRAM_API_KEY": "dg",
    "OPENAI_API_KEY": "sk",
    "CARTESIA_API_KEY": "ct",
}
_INSTALL_PATH = "/opt/voice-supervisor/.venv/bin/voice-supervisor"


def test_the_production_template_loads_with_secrets_from_the_environment() -> None:
    path = DEPLOY / "config.production.toml"
    text = path.read_text()
    assert not re.search(r"^\s*(api_key|api_secret|backend_token)\s*=", text, flags=re.M)
    config = load_config(path, environ=_SECRETS)
    assert config.livekit.url.startswith("wss://")
    assert config.livekit.api_secret.get_secret_value() == _SECRETS["LIVEKIT_API_SECRET"]
    assert config.persistence.data_dir.is_absolute()
    assert config.logging.format == "json" and config.logging.level == "INFO"
    assert not config.playground.enabled
    assert provider_problems(config) == []  # every vendor has its key (from the environment)


def _verify(unit: Path) -> list[str]:
    """systemd-analyze's complaints, except that the install path does not exist here."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/install-system-deps.sh test"
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    lines = (done.stdout + done.stderr).splitlines()
    return [line for line in lines if line.strip() and _INSTALL_PATH not in line]


def test_both_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    assert _verify(DEPLOY / "voice-supervisor.service") == []
    template = tmp_path / "voice-supervisor@.service"
    shutil.copy(DEPLOY / "voice-supervisor@.service", template)
    instance = tmp_path / "voice-supervisor@a.service"
    instance.symlink_to(template.name)
    assert _verify(instance) == []


def test_the_templated_unit_differs_only_in_its_instance_paths() -> None:
    def settings(name: str) -> dict[str, str]:
        lines = (DEPLOY / name).read_text().splitlines()
        pairs = (line.split("=", 1) for line in lines if re.match(r"^[A-Z]\w*=", line))
        return {key: value for key, value in pairs if key != "EnvironmentFile"}

    single, template = settings("voice-supervisor.service"), settings("voice-supervisor@.service")
    different = {k for k in single if template.get(k) != single[k]}
    assert different == {
        "Description",
        "WorkingDirectory",
        "Environment",
        "ExecStart",
        "StateDirectory",
        "ReadWritePaths",
    }
    assert all("%i" in template[k] for k in different)
    assert set(template) == set(single)
