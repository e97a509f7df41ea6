"""Memory over time: rooms opened and ended one wave after another, the daemon's PSS sampled.

Starts livekit-server and the daemon (a subprocess, its default room workers, zero-latency
fake providers so the models do not hide the growth), then runs waves of ``--parallel`` rooms:
each room is created, a caller (in this process) speaks a tone burst once and waits for the
agent's answer caption, leaves, and the room is deleted; the next wave starts once the daemon
reports no rooms. After every wave the PSS of the daemon's whole process tree is read
(``/proc/PID/smaps_rollup``). Growth is the least-squares slope of PSS over rooms after the
warm-up waves, per 1,000 rooms.

    python bench/soak.py --rooms 480 --json bench/results/soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import anyio
from livekit import api

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._daemon_proc import daemon_under_test  # noqa: E402
from bench._results import write_result  # noqa: E402
from bench.latency import tone  # noqa: E402
from tests.harness.caller import caller  # noqa: E402


def children(pid: int) -> list[int]:
    """Child pids of ``pid`` (threads come and go while we read: a vanished one is skipped)."""
    kids: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return kids
    for task in tasks:
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def pss_mb(pid: int) -> float:
    """PSS of ``pid`` and its descendants: shared pages counted once across the tree."""
    total = 0.0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return total + sum(pss_mb(child) for child in children(pid))


def daemon_rooms(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as reply:
            return int(json.loads(reply.read())["rooms"])
    except urllib.error.HTTPError as exc:  # 503 still carries the details
        return int(json.loads(exc.read())["rooms"])


def slope(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


async def one_room(server: Any, lk: api.LiveKitAPI, name: str) -> None:
    await lk.room.create_room(
        api.CreateRoomRequest(name=name, metadata=json.dumps({"conversation_id": name}))
    )
    async with caller(server, name, "caller") as bot:
        with anyio.fail_after(20):
            await bot.heard.wait()  # the agent listens to us
        before = len(bot.finals("voice-agent"))
        await bot.say(tone(0.25), 48_000)
        await bot.wait_for(
            lambda: len(bot.finals("voice-agent")) > before, deadline_s=20, what="answer"
        )
    await lk.room.delete_room(api.DeleteRoomRequest(room=name))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=480)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--warmup-waves", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="[supervisor] workers")
    parser.add_argument(
        "--providers",
        choices=("fake", "local"),
        default="fake",
        help="zero-latency fakes, or the shipped local models (idle PSS as operators see it)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args()

    workers = "" if args.workers is None else f"workers = {args.workers}\n"
    voice = (
        '[voice]\nproviders_factory = "tests.fakes.instant:providers"\n'
        if args.providers == "fake"
        else ""
    )
    extra = f"[supervisor]\nreconcile_interval_s = 300\n{workers}{voice}"
    samples: list[tuple[int, float]] = []
    started = time.monotonic()
    async with daemon_under_test("bench-soak-", extra, cwd=ROOT) as daemon:
        server = daemon.server
        async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
            await daemon.wait_log("voice-supervisor listening", 1, 120)
            idle = pss_mb(daemon.pid)
            done = wave = 0
            while done < args.rooms:
                names = [f"soak-{wave}-{i}" for i in range(args.parallel)]
                await asyncio.gather(*(one_room(server, lk, name) for name in names))
                done += len(names)
                wave += 1
                deadline = time.monotonic() + 30
                while daemon_rooms(daemon.port) and time.monotonic() < deadline:  # noqa: ASYNC110  # polls another process
                    await asyncio.sleep(0.1)
                samples.append((done, pss_mb(daemon.pid)))
                print(f"{done:>6} rooms  PSS {samples[-1][1]:8.1f} MB", flush=True)

    after_warmup = samples[args.warmup_waves :] or samples or [(0, idle)]
    points = [(float(r), p) for r, p in after_warmup]
    growth = slope([r for r, _ in points], [p for _, p in points]) * 1000
    result = {
        "rooms": samples[-1][0] if samples else 0,
        "parallel": args.parallel,
        "providers": args.providers,
        "seconds": round(time.monotonic() - started, 1),
        "pss_mb": {
            "idle": round(idle, 1),
            "after_warmup": round(after_warmup[0][1], 1),
            "last": round(after_warmup[-1][1], 1),
        },
        "growth_mb_per_1000_rooms": round(growth, 1),
        "samples": [{"rooms": r, "pss_mb": round(p, 1)} for r, p in samples],
    }
    print(f"{'metric':<34}{'value':>10}")
    print(f"{'rooms':<34}{result['rooms']:>10}")
    for key, value in result["pss_mb"].items():
        print(f"{'PSS ' + key + ' (MB)':<34}{value:>10}")
    print(f"{'growth per 1,000 rooms (MB)':<34}{result['growth_mb_per_1000_rooms']:>10}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_result(args.json, result)


if __name__ == "__main__":
    asyncio.run(main())
