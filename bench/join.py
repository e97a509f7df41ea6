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
import sys
from pathlib import Path

from livekit import api

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._daemon_proc import daemon_under_test  # noqa: E402
from bench._results import write_result  # noqa: E402


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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args()

    extra = "[supervisor]\nreconcile_interval_s = 300\n"
    async with daemon_under_test("bench-join-", extra) as daemon:
        server = daemon.server
        async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
            await daemon.wait_log("voice-supervisor listening", 1, 30)
            await asyncio.sleep(1.0)  # let the idle daemon settle before measuring its memory
            idle = rss_mb(daemon.pid)
            for i in range(args.rooms):
                await lk.room.create_room(
                    api.CreateRoomRequest(
                        name=f"bench-join-{i}", metadata=json.dumps({"conversation_id": f"c{i}"})
                    )
                )
                await daemon.wait_log("room joined", i + 1, 30)
            await asyncio.sleep(1.0)
            loaded = rss_mb(daemon.pid)
        joins = [
            float(str(line["join_ms"])) for line in daemon.lines if line.get("msg") == "room joined"
        ]

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
        write_result(args.json, result)


if __name__ == "__main__":
    asyncio.run(main())
