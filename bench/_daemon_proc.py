"""The daemon under measurement: a real livekit-server and ``voice-supervisor run`` as a
subprocess with JSON logs, so the benchmark process's own work is not counted against it.

    async with daemon_under_test("bench-x-", '[voice]\\nenabled = false\\n') as d:
        await d.wait_log("voice-supervisor listening", 1, 30)
        ... d.server, d.port, d.pid, d.lines ...
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.livekit_server import LiveKitServer, free_port, start_server

__all__ = ("DaemonProc", "daemon_under_test")

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class DaemonProc:
    server: LiveKitServer
    port: int
    process: subprocess.Popen[str]
    work: Path
    lines: list[dict[str, object]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait_log(self, msg: str, count: int, deadline_s: float) -> None:
        """Until ``count`` log lines have the message ``msg``."""
        end = time.monotonic() + deadline_s
        while sum(1 for line in self.lines if line.get("msg") == msg) < count:
            if time.monotonic() > end:
                raise TimeoutError(f"waited {deadline_s}s for {count} '{msg}' log lines")
            await asyncio.sleep(0.01)  # another process's log: nothing to wait on but time


@asynccontextmanager
async def daemon_under_test(
    prefix: str, extra_toml: str = "", *, cwd: Path | None = None
) -> AsyncIterator[DaemonProc]:
    """A livekit-server and the daemon, its webhooks pointed at it, stopped on exit.

    Args:
        prefix: of the temporary work directory.
        extra_toml: config sections after ``[livekit]``, ``[server]``, ``[persistence]`` and
            ``[logging]`` (give ``[supervisor]``, ``[voice]``... here, each at most once).
        cwd: the daemon's working directory (the repository root lets it import tests.fakes).
    """
    work = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    server = start_server(work, [f"http://127.0.0.1:{port}/webhook"])
    config = work / "config.toml"
    config.write_text(
        f'[livekit]\nurl = "{server.ws_url}"\napi_key = "{server.api_key}"\n'
        f'api_secret = "{server.api_secret}"\n[server]\nport = {port}\n'
        f'[persistence]\ndata_dir = "{work / "data"}"\n[logging]\nformat = "json"\n' + extra_toml
    )
    process = subprocess.Popen(  # noqa: ASYNC220  # started once, before any measurement
        [sys.executable, "-m", "supervisor", "run", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd or work,
    )
    daemon = DaemonProc(server, port, process, work)

    def read_stderr() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            try:
                daemon.lines.append(json.loads(raw))
            except ValueError:
                continue

    reader = asyncio.get_running_loop().run_in_executor(None, read_stderr)
    try:
        yield daemon
    finally:
        process.terminate()
        process.wait(timeout=60)
        await reader
        server.stop()
