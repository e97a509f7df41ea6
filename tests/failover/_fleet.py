"""Several daemons as subprocesses sharing one livekit-server, one Redis and one backend.

Each daemon has its own port, agent identity (``agent-<name>``), outbox and Redis node id
(its name), so the tests can tell which daemon answers in a room. Rooms whose name contains
``-only-<name>-`` are joined by that daemon alone (the others skip them), so a test can place
rooms on chosen daemons. Waits poll a condition with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from supervisor import SupervisorSettings
from tests.failover._redis_server import RedisServer
from tests.harness.livekit_server import ROOT, LiveKitServer, free_port

BACKEND_TOKEN = "failover-backend-token"
_READY_DEADLINE_S = 60.0
_PAUSE_S = 0.05


@dataclass(frozen=True)
class FleetSettings:
    """Timing and limits shared by every daemon of a fleet."""

    lease_ttl_s: float = 3.0
    reconcile_interval_s: float = 1.0
    max_rooms_per_user: int | None = 1
    turns_per_minute_per_user: int | None = 2
    max_rooms: int | None = None
    """Actors per daemon (``[supervisor] max_rooms``): 1 spreads a room's agents apart."""
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``[agents.NAME]`` profiles, the same on every daemon."""


@dataclass
class DaemonProc:
    """One daemon subprocess."""

    name: str
    config_path: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: BinaryIO | None = None

    @property
    def identity(self) -> str:
        return f"agent-{self.name}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.alive:
            raise RuntimeError(f"daemon {self.name} is already running")
        self._close_log()
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.failover._daemon_main",
                "--config",
                str(self.config_path),
            ],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "REDIS_URL"},
        )

    def wait_ready(self, deadline_s: float = _READY_DEADLINE_S) -> None:
        """Wait until /readyz answers 200 (Redis reachable, not draining)."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"daemon {self.name} exited; see {self.log_path}")
            status, _ = self.readyz()
            if status == 200:
                return
            _pause(self.process)
        raise TimeoutError(f"daemon {self.name} not ready after {deadline_s}s; see {self.log_path}")

    def readyz(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except OSError:
            return 0, {}

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample on /metrics (0 when absent)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
            text = r.read().decode()
        want = name + (
            "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
        )
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._close_log()

    def stop(self) -> None:
        """SIGTERM (the drain ladder), then SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Fleet:
    """The daemons, the Redis and the backend they share."""

    server: LiveKitServer
    redis: RedisServer
    backend_db: Path
    settings: FleetSettings
    daemons: dict[str, DaemonProc] = field(default_factory=dict)
    backend: subprocess.Popen[bytes] | None = None

    def by_identity(self, identity: str) -> DaemonProc:
        return next(d for d in self.daemons.values() if d.identity == identity)

    def stop(self) -> None:
        for daemon in self.daemons.values():
            daemon.stop()
        if self.backend is not None and self.backend.poll() is None:
            self.backend.terminate()
            self.backend.wait(timeout=10)


def start_backend(db: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """The reference backend (``voice-supervisor backend``), answering once it listens."""
    log = log_path.open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "supervisor",
            "backend",
            "--db",
            str(db),
            "--port",
            str(port),
            "--token",
            BACKEND_TOKEN,
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + _READY_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the reference backend exited; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                return process
        except urllib.error.HTTPError:
            return process  # it answers (any status): it listens
        except OSError:
            _pause(process)
    process.kill()
    raise TimeoutError(f"the reference backend did not listen within {_READY_DEADLINE_S}s")


def write_config(
    path: Path,
    *,
    name: str,
    names: list[str],
    port: int,
    server: LiveKitServer,
    redis_url: str,
    backend_url: str,
    data_dir: Path,
    settings: FleetSettings,
) -> None:
    others = [f"*-only-{n}-*" for n in names if n != name]
    redis: dict[str, Any] = {
        "url": redis_url,
        "node_id": name,
        "lease_ttl_s": settings.lease_ttl_s,
        "timeout_s": settings.lease_ttl_s / 3,  # a busy 2-core loop answers slowly
    }
    if settings.max_rooms_per_user is not None:
        redis["max_rooms_per_user"] = settings.max_rooms_per_user
    if settings.turns_per_minute_per_user is not None:
        redis["turns_per_minute_per_user"] = settings.turns_per_minute_per_user
    supervisor: dict[str, Any] = {
        "reconcile_interval_s": settings.reconcile_interval_s,
        "drain_timeout_s": 3.0,
    }
    if settings.max_rooms is not None:
        supervisor["max_rooms"] = settings.max_rooms
    if "workers" in SupervisorSettings.model_fields:
        # Rooms in the daemon's own process: the per-user limits wrap the model there, and a
        # restarted daemon is ready in seconds.
        supervisor["workers"] = 0
    sections: dict[str, dict[str, Any]] = {
        "livekit": {
            "url": server.ws_url,
            "api_key": server.api_key,
            "api_secret": server.api_secret,
        },
        "server": {"host": "127.0.0.1", "port": port},
        "agent": {"identity": f"agent-{name}", "connect_timeout_s": 10.0, "skip_rooms": others},
        "persistence": {
            "data_dir": str(data_dir),
            "outbox_name": name,
            "backend_url": backend_url,
            "backend_token": BACKEND_TOKEN,
            "flush_interval_ms": 5,
        },
        "supervisor": supervisor,
        "redis": redis,
        "logging": {"level": "INFO", "format": "json"},
    }
    sections.update({f"agents.{n}": profile for n, profile in settings.agents.items()})
    path.write_text(_toml(sections))


def build_fleet(
    work: Path,
    server_factory: Any,
    redis: RedisServer,
    names: list[str],
    settings: FleetSettings,
) -> Fleet:
    """Start a backend, a livekit-server posting webhooks to every daemon, and the daemons."""
    work.mkdir(parents=True, exist_ok=True)
    ports = {n: free_port() for n in names}
    server = server_factory([f"http://127.0.0.1:{ports[n]}/webhook" for n in names])
    backend_port = free_port()
    fleet = Fleet(server, redis, work / "backend.sqlite3", settings)
    try:
        fleet.backend = start_backend(fleet.backend_db, backend_port, work / "backend.log")
        for name in names:
            config = work / f"daemon-{name}.toml"
            write_config(
                config,
                name=name,
                names=names,
                port=ports[name],
                server=server,
                redis_url=redis.url,
                backend_url=f"http://127.0.0.1:{backend_port}",
                data_dir=work / f"data-{name}",
                settings=settings,
            )
            fleet.daemons[name] = DaemonProc(name, config, ports[name], work / f"daemon-{name}.log")
        for daemon in fleet.daemons.values():
            daemon.start()
        for daemon in fleet.daemons.values():
            daemon.wait_ready()
    except BaseException:
        fleet.stop()
        raise
    return fleet


def _pause(process: subprocess.Popen[bytes] | None) -> None:
    """Wait for ``process`` to exit or a short pause to pass, whichever comes first."""
    if process is None:
        time.sleep(_PAUSE_S)
        return
    try:
        process.wait(timeout=_PAUSE_S)
    except subprocess.TimeoutExpired:
        pass


def _toml(sections: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    return "\n".join(lines)
