"""Webhook → agent joined latency and daemon RSS, against a real livekit-server.

Starts livekit-server and the daemon (as a subprocess, JSON logs), creates N rooms one after
another, and reads each room's join latency from the daemon's "room joined" log line (the
registry measures from the webhook's arrival to the actor's connected-and-ready point).

    python bench/join.py --rooms 20 --json bench/results/join.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from livekit import api

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.livekit_server import free_port, start_server  # noqa: E402


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        kids += [int(k) for k in text]
    return kids


def rss_mb(pid: int) -> float:
    """RSS of ``pid`` and its descendants (the room-worker processes)."""
    total = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1]) / 1024
    return total + sum(rss_mb(child) for child in _children(pid))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def wait_log(lines: list[dict[str, object]], msg: str, count: int, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while sum(1 for line in lines if line.get("msg") == msg) < count:
        if time.monotonic() > end:
            raise TimeoutError(f"waited {deadline_s}s for {count} '{msg}' log lines")
        await asyncio.sleep(0.01)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-join-"))
    port = free_port()
    server = start_server(work, [f"http://127.0.0.1:{port}/webhook"])
    config = work / "config.toml"
    config.write_text(
        f'[livekit]\nurl = "{server.ws_url}"\napi_key = "{server.api_key}"\n'
        f'api_secret = "{server.api_secret}"\n[server]\nport = {port}\n'
        f'[persistence]\ndata_dir = "{work / "data"}"\n'
        '[supervisor]\nreconcile_interval_s = 300\n[logging]\nformat = "json"\n'
    )
    daemon = subprocess.Popen(  # noqa: ASYNC220  # started once, before any measurement
        [sys.executable, "-m", "supervisor", "run", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=work,
    )
    lines: list[dict[str, object]] = []

    def read_stderr() -> None:
        assert daemon.stderr is not None
        for raw in daemon.stderr:
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue

    reader = asyncio.get_running_loop().run_in_executor(None, read_stderr)
    lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
    try:
        await wait_log(lines, "voice-supervisor listening", 1, 30)
        await asyncio.sleep(1.0)  # let the idle daemon settle before measuring its memory
        idle = rss_mb(daemon.pid)
        for i in range(args.rooms):
            await lk.room.create_room(
                api.CreateRoomRequest(
                    name=f"bench-join-{i}", metadata=json.dumps({"conversation_id": f"c{i}"})
                )
            )
            await wait_log(lines, "room joined", i + 1, 30)
        await asyncio.sleep(1.0)
        loaded = rss_mb(daemon.pid)
        joins = [float(str(line["join_ms"])) for line in lines if line.get("msg") == "room joined"]
    finally:
        await lk.aclose()
        daemon.terminate()
        daemon.wait(timeout=30)
        await reader
        server.stop()

    result = {
        "rooms": args.rooms,
        "join_ms": {
            "p50": round(percentile(joins, 50), 1),
            "p95": round(percentile(joins, 95), 1),
            "max": round(max(joins), 1),
            "mean": round(statistics.mean(joins), 1),
        },
        "rss_mb": {
            "idle": round(idle, 1),
            "with_rooms": round(loaded, 1),
            "per_room": round((loaded - idle) / args.rooms, 2),
        },
        "cpus": os.cpu_count(),
    }
    print(f"{'metric':<28}{'value':>10}")
    print(f"{'rooms':<28}{args.rooms:>10}")
    for key in ("p50", "p95", "max"):
        print(f"{'webhook→joined ' + key + ' (ms)':<28}{result['join_ms'][key]:>10}")
    for key in ("idle", "with_rooms", "per_room"):
        print(f"{'RSS ' + key + ' (MB)':<28}{result['rss_mb'][key]:>10}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
