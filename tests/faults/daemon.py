"""The daemon as an operator runs it: ``python -m supervisor run --config PATH`` in a subprocess.

Its stderr (JSON log lines) is read by a task as it comes, so a test waits on a log line with
a deadline instead of sleeping. Signals go to its pid only. Secrets from the environment are
removed so that the config file alone decides what the daemon does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from anyio.abc import Process

from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

ROOT = Path(__file__).resolve().parents[2]
_SECRETS = ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "BACKEND_TOKEN", "REDIS_URL")
START_DEADLINE_S = 60.0


def config_toml(
    server: LiveKitServer,
    port: int,
    data_dir: Path,
    *,
    rooms: tuple[str, ...] = ("*",),
    level: str = "INFO",
    drain_timeout_s: float = 10.0,
    reconcile_interval_s: float = 300.0,
    workers: int | None = None,
) -> str:
    """A config file for a daemon under test (voice off: these tests are about supervision).

    ``workers`` None keeps the default (room-worker processes, one per core); 0 runs the rooms
    in the supervisor process, which starts faster.
    """
    patterns = ", ".join(json.dumps(p) for p in rooms)
    worker_line = "" if workers is None else f"workers = {workers}"
    return f"""
[livekit]
url = "{server.ws_url}"
api_key = "{server.api_key}"
api_secret = "{server.api_secret}"

[server]
host = "127.0.0.1"
port = {port}

[agent]
rooms = [{patterns}]
connect_timeout_s = 10.0

[persistence]
data_dir = "{data_dir}"
flush_interval_ms = 5

[supervisor]
reconcile_interval_s = {reconcile_interval_s}
drain_timeout_s = {drain_timeout_s}
{worker_line}

[voice]
enabled = false

[logging]
level = "{level}"
format = "json"
"""


@dataclass
class DaemonProcess:
    """A running daemon subprocess and the log lines it has written so far."""

    process: Process
    config_path: Path
    data_dir: Path
    port: int
    lines: list[dict[str, Any]] = field(default_factory=list)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def send_signal(self, signum: signal.Signals, *, group: bool = False) -> float:
        """Signal the daemon (``group``: and its workers, as Ctrl-C in a terminal does).

        Returns:
            the monotonic time the signal was sent.
        """
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        return time.monotonic()

    def messages(self, msg: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("msg") == msg]

    async def wait_line(
        self, predicate: Callable[[dict[str, Any]], bool], *, deadline_s: float, what: str
    ) -> dict[str, Any]:
        """The first log line (already written or still to come) matching ``predicate``."""
        with anyio.move_on_after(deadline_s):
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self.lines)
                if self.process.returncode is not None:
                    break
                await self._changed.wait()
        tail = "\n".join(json.dumps(line) for line in self.lines[-15:])
        raise TimeoutError(
            f"daemon log: no line for {what} within {deadline_s}s; last lines:\n{tail}"
        )

    async def healthy(self) -> bool:
        """True once ``/healthz`` answers; raises if the process has exited instead."""
        if self.process.returncode is not None:
            raise RuntimeError(
                f"the daemon exited with {self.process.returncode}: {self.lines[-10:]}"
            )
        try:
            async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
                return (await client.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    async def wait_exit(self, *, deadline_s: float) -> int:
        with anyio.fail_after(deadline_s):
            return await self.process.wait()

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        buffer = b""
        async for chunk in self.process.stderr:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                text = raw.decode("utf-8", "replace")
                try:
                    line = json.loads(text)
                except ValueError:
                    line = None
                self.lines.append(line if isinstance(line, dict) else {"raw": text})
            self._changed.set()
            self._changed = anyio.Event()
        self._changed.set()


@asynccontextmanager
async def running_daemon(config: str, workdir: Path, port: int) -> AsyncIterator[DaemonProcess]:
    """Start ``python -m supervisor run --config <workdir>/config.toml``; wait until it is healthy.

    On exit the daemon is killed if it is still running.
    """
    config_path = workdir / "config.toml"
    await anyio.Path(workdir).mkdir(parents=True, exist_ok=True)
    await anyio.Path(config_path).write_text(config)
    env = {k: v for k, v in os.environ.items() if k not in _SECRETS}
    env["PYTHONPATH"] = str(ROOT)
    process = await anyio.open_process(
        [sys.executable, "-m", "supervisor", "run", "--config", str(config_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=workdir,
        env=env,
        start_new_session=True,  # its own process group, like a service: see send_signal
    )
    daemon = DaemonProcess(process, config_path, workdir / "data", port)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon._read_stderr, name="daemon-stderr")
            try:
                await poll_until(daemon.healthy, deadline_s=START_DEADLINE_S, what="daemon healthz")
                yield daemon
            finally:
                if process.returncode is None:
                    os.killpg(process.pid, signal.SIGKILL)
                with anyio.move_on_after(10, shield=True):
                    await process.wait()
                tg.cancel_scope.cancel()
    finally:
        await process.aclose()
