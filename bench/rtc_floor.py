"""What a room costs the rtc SDK alone, before any agent code: the floor under bench/rooms.py.

For each mode of bench/_floor_agent.py (join, subscribe, stream, publish), starts fresh callers
(bench/_load_proc.py, a speaking microphone each) and one bare rtc process holding all the
rooms, waits until it is steady, and measures over ``--hold`` seconds the CPU of that process,
of the callers and of livekit-server, per room-second, and the agent's RSS per room.

    python bench/rtc_floor.py --rooms 20 --json bench/results/rtc-floor.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._results import write_result  # noqa: E402
from bench.rooms import (  # noqa: E402
    Server,
    cpu_s,
    go_loadgen,
    python_loadgen,
    rss_mb,
    start_livekit,
    start_load,
    stop,
)
from tests.harness.livekit_server import API_KEY, API_SECRET  # noqa: E402

MODES = ("join", "subscribe", "stream", "source", "publish")


@dataclass(frozen=True)
class FloorRun:
    """One measurement: what the bare agent does, and with how many rooms."""

    mode: str
    rooms: int
    per_proc: int
    hold: float
    frame_ms: int
    queue_ms: int
    loop: str
    mute: bool
    tag: str


def measure_mode(server: Server, command: list[str], run: FloorRun) -> dict[str, Any]:
    mode, rooms, per_proc, hold = run.mode, run.rooms, run.per_proc, run.hold
    frame_ms, queue_ms, loop, tag = run.frame_ms, run.queue_ms, run.loop, run.tag
    names = [f"floor-{tag}-{mode}-{i}" for i in range(rooms)]
    loads = [
        start_load(server, names[i : i + per_proc], command) for i in range(0, rooms, per_proc)
    ]
    extra = ["--mute"] if run.mute else []
    agent = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "_floor_agent.py"),
            "--url",
            server.ws_url,
            "--key",
            API_KEY,
            "--secret",
            API_SECRET,
            "--rooms",
            ",".join(names),
            "--mode",
            mode,
            "--frame-ms",
            str(frame_ms),
            "--queue-ms",
            str(queue_ms),
            "--loop",
            loop,
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    lines: list[dict[str, Any]] = []
    got_ready = threading.Event()

    def read() -> None:
        assert agent.stdout is not None
        for raw in agent.stdout:
            lines.append(json.loads(raw))
            if "ready" in lines[-1]:
                got_ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not got_ready.wait(90):
            raise RuntimeError(f"floor agent not ready in mode {mode}")
        deadline = time.monotonic() + 30
        while any(load.ready < 0 for load in loads) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # let joins and subscriptions settle before the window opens
        pids = {"agent": [agent.pid], "callers": [lp.process.pid for lp in loads]}
        pids["server"] = [server.process.pid]
        before = {k: sum(cpu_s(p) for p in v) for k, v in pids.items()}
        start = time.monotonic()
        time.sleep(hold)
        window = time.monotonic() - start
        after = {k: sum(cpu_s(p) for p in v) for k, v in pids.items()}
        per_room_s = {k: (after[k] - before[k]) * 1000 / (rooms * window) for k in pids}
        return {
            "mode": mode,
            "rooms": rooms,
            "frame_ms": frame_ms,
            "queue_ms": queue_ms,
            "loop": loop,
            "muted": run.mute,
            "window_s": round(window, 1),
            "agent_cpu_ms_per_room_s": round(per_room_s["agent"], 2),
            "caller_cpu_ms_per_room_s": round(per_room_s["callers"], 2),
            "server_cpu_ms_per_room_s": round(per_room_s["server"], 2),
            "agent_rss_mb": round(rss_mb(agent.pid), 1),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        stop(agent)
        for load in loads:
            stop(load.process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--per-proc", type=int, default=20)
    parser.add_argument("--hold", type=float, default=15.0)
    parser.add_argument("--frame-ms", type=int, default=40)
    parser.add_argument("--queue-ms", type=int, default=400)
    parser.add_argument("--loadgen", choices=("go", "python"), default="go")
    parser.add_argument("--mute", action="store_true", help="mute the published track")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="rtc-floor-") as tmp:
        work = Path(tmp)
        server = start_livekit(work, [])
        command = go_loadgen(work, 3600) if args.loadgen == "go" else python_loadgen(3600)
        try:
            for mode in args.modes.split(","):
                run = FloorRun(
                    mode,
                    args.rooms,
                    args.per_proc,
                    args.hold,
                    args.frame_ms,
                    args.queue_ms,
                    args.loop,
                    args.mute,
                    str(os.getpid()),
                )
                row = measure_mode(server, command, run)
                results.append(row)
                print(
                    f"{mode:<10} rooms={row['rooms']:<4}"
                    f" agent {row['agent_cpu_ms_per_room_s']:>7.2f} ms/room-s"
                    f"  callers {row['caller_cpu_ms_per_room_s']:>7.2f}"
                    f"  server {row['server_cpu_ms_per_room_s']:>7.2f}"
                    f"  agent RSS {row['agent_rss_mb']} MB  load {row['loadavg'][0]}",
                    flush=True,
                )
        finally:
            stop(server.process)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_result(args.json, {"cores": os.cpu_count(), "modes": results})


if __name__ == "__main__":
    main()
