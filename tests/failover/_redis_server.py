"""A real redis-server on a free loopback port, for the failover tests and benchmark.

Never skips: a missing ``redis-server`` binary is an error that says how to install it.
It runs without persistence (``--save '' --appendonly no``), so a restart loses every key,
the harshest case for leases.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tests.harness.livekit_server import free_port

_START_DEADLINE_S = 10.0


def system_binary(name: str, needed_for: str) -> str:
    """The path of the Debian package ``name``'s binary of the same name; never a skip."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"{name} is not installed: run scripts/install-system-deps.sh "
            f"(apt-get install {name}); {needed_for}"
        )
    return path


def redis_binary() -> str:
    return system_binary("redis-server", "the failover tests need a real Redis")


@dataclass
class RedisServer:
    """A redis-server process; ``stop()`` and ``start()`` keep the same port."""

    log_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: BinaryIO | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) the server and wait until it answers PING."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("redis-server is already running")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log = (self.log_dir / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.log_dir,
        )
        deadline = time.monotonic() + _START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            if _pong(self.port):
                return
            try:  # wait for the process to exit or 20 ms to pass
                self.process.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                pass
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING within {_START_DEADLINE_S}s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); every key is lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
