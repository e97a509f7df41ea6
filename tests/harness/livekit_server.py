"""Build (once, cached) and run a real livekit-server for tests and benchmarks.

Never skips: if the server cannot be built or started, the caller gets an error saying why.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build-livekit-server.sh"

API_KEY = "devkey"
# 32+ bytes: PyJWT warns about shorter HMAC keys, and production secrets are long too.
API_SECRET = "voice-supervisor-test-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_range(size: int) -> int:
    """A start port such that [start, start+size) looks free (best effort)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            start = int(s.getsockname()[1])
        if start + size < 65000:
            return start
    return 40000


def server_binary() -> Path:
    """Path of the cached livekit-server binary, building it if needed."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False, timeout=1800
    )
    if result.returncode != 0:
        raise RuntimeError(
            "could not build livekit-server with scripts/build-livekit-server.sh:\n"
            + result.stderr[-4000:]
        )
    return Path(result.stdout.strip().splitlines()[-1])


@dataclass
class LiveKitServer:
    """A running livekit-server on loopback."""

    process: subprocess.Popen[bytes]
    port: int
    webhook_urls: list[str]
    log_path: Path
    log: BinaryIO
    api_key: str = API_KEY
    api_secret: str = API_SECRET

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def start_server(
    log_dir: Path, webhook_urls: list[str], *, redis: str | None = None
) -> LiveKitServer:
    """Start livekit-server on free loopback ports with webhooks to ``webhook_urls``.

    A port found free can be taken by another process before the server binds it; that one
    failure is retried with new ports.

    Raises:
        RuntimeError: the binary is missing and cannot be built, or the server did not answer.
    """
    for attempt in range(5):
        try:
            return _start_server(log_dir, webhook_urls, redis=redis)
        except _PortTaken:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


class _PortTaken(RuntimeError):
    pass


def _start_server(log_dir: Path, webhook_urls: list[str], *, redis: str | None) -> LiveKitServer:
    binary = server_binary()
    port, tcp_port, udp_start = free_port(), free_port(), free_udp_range(200)
    urls = "".join(f"\n    - {u}" for u in webhook_urls)
    config = f"""
port: {port}
bind_addresses: ["127.0.0.1"]
rtc:
  tcp_port: {tcp_port}
  port_range_start: {udp_start}
  port_range_end: {udp_start + 200}
  use_external_ip: false
  node_ip: 127.0.0.1
keys:
  {API_KEY}: {API_SECRET}
logging:
  level: info
room:
  empty_timeout: 60
  departure_timeout: 5
"""
    if webhook_urls:
        config += f"webhook:\n  api_key: {API_KEY}\n  urls:{urls}\n"
    if redis:
        config += f"redis:\n  address: {redis}\n"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"livekit-server-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [str(binary), "--config-body", config],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LIVEKIT_CONFIG": ""},
    )
    server = LiveKitServer(process, port, webhook_urls, log_path, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.close()
            output = log_path.read_text(errors="replace")
            if "address already in use" in output:
                raise _PortTaken(output[-500:])
            raise RuntimeError(
                f"livekit-server exited with {process.returncode}: " + output[-3000:]
            )
        try:
            with urllib.request.urlopen(server.http_url, timeout=1) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            try:  # wait for the process to exit or 50 ms to pass, whichever comes first
                process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
    server.stop()
    raise RuntimeError("livekit-server did not answer within 30 s; see " + str(log_path))
