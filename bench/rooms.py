"""Rooms per core: ramp rooms with a speaking caller each until the agent slows or drops audio.

Starts livekit-server and the daemon (a subprocess with a config file, zero-latency fake
providers in its room workers, no greeting), then ramps the number of rooms step by step. The
callers run in load-generator processes of their own (bench/_load_proc.py, ``--per-proc`` rooms
each), each speaking a short tone burst every ``--period`` seconds. Each step is held for
``--hold`` seconds and measured over that window:

- agent-added latency: the agent's own figure ``latency_ms.agent_added`` from the stored
  ``turn`` events (final transcript to first TTS audio captured), as bench/latency.py reads it;
- dropped audio frames: ``voice_supervisor_audio_frames_dropped_total`` from the daemon's
  ``/metrics`` (the supervisor sums its workers);
- RSS of the supervisor and its worker processes (VmRSS) and their CPU time (utime+stime).

The ramp stops when agent-added p99 passes 50 ms, frames are dropped, answers go missing, or
``--max-rooms`` is reached. Runs once with ``workers = 1`` and once with ``workers = cores``.

    python bench/rooms.py --json bench/results/rooms.json --max-rooms 120 --step 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._results import write_result  # noqa: E402
from tests.harness.livekit_server import (  # noqa: E402
    API_KEY,
    API_SECRET,
    free_port,
    server_binary,
)

P99_LIMIT_MS = 50.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages (forkserver copy-on-write) counted once overall."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(c) for c in (task / "children").read_text().split()]
    return out


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_livekit(work: Path, webhook_urls: list[str]) -> Server:
    """livekit-server with one UDP port for all peers (a port range would run out of ports)."""
    port, tcp_port, udp_port = free_port(), free_port(), free_port()
    hooks = "".join(f"\n    - {u}" for u in webhook_urls)
    config = f"""
port: {port}
bind_addresses: ["127.0.0.1"]
rtc:
  tcp_port: {tcp_port}
  udp_port: {udp_port}
  use_external_ip: false
  node_ip: 127.0.0.1
keys:
  {API_KEY}: {API_SECRET}
logging:
  level: info
room:
  empty_timeout: 30
  departure_timeout: 5
"""
    if webhook_urls:
        config += f"webhook:\n  api_key: {API_KEY}\n  urls:{hooks}\n"
    log = (work / f"livekit-server-{port}.log").open("wb")
    process = subprocess.Popen(
        [str(server_binary()), "--config-body", config],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LIVEKIT_CONFIG": ""},
    )
    server = Server(process, port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(server.http_url, timeout=1) as resp:
                if resp.status == 200:
                    return server
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("livekit-server did not answer within 30 s")


def stop(process: subprocess.Popen[Any], timeout: float = 20) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class LoadProc:
    """A load-generator process and what it has printed."""

    process: subprocess.Popen[str]
    rooms: int
    ready: int = -1
    turns_ms: list[tuple[float, float]] = field(default_factory=list)  # (monotonic, ms)
    bursts: list[float] = field(default_factory=list)  # monotonic
    stats: dict[str, int] = field(default_factory=dict)

    def read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with contextlib.suppress(ValueError):
                line = json.loads(raw)
                if "ready" in line:
                    self.ready = int(line["ready"])
                elif "burst" in line:
                    self.bursts.append(time.monotonic())
                elif "turn_ms" in line:
                    self.turns_ms.append((time.monotonic(), float(line["turn_ms"])))
                elif "stats" in line:
                    self.stats = line["stats"]


class Agent:
    """What is under test: how to start it, its processes, and its per-turn figures."""

    name = "agent"

    def start(self, server: Server, work: Path) -> None:
        raise NotImplementedError

    def webhook_url(self) -> str | None:
        return None

    def pids(self) -> list[int]:
        raise NotImplementedError

    def agent_added_since(self, mark: int) -> tuple[list[float], int]:
        """Agent-added latencies (ms) stored after ``mark``, and the new mark."""
        raise NotImplementedError

    def dropped_frames(self) -> float:
        return 0.0

    def stop(self) -> None:
        raise NotImplementedError


class Daemon(Agent):
    def __init__(self, workers: int, rooms_per_worker: int) -> None:
        self.workers, self.rooms_per_worker = workers, rooms_per_worker
        self.name = f"voice-supervisor workers={workers}"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.store: Path | None = None

    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def start(self, server: Server, work: Path) -> None:
        config = work / "config.toml"
        config.write_text(
            f'[livekit]\nurl = "{server.ws_url}"\napi_key = "{API_KEY}"\n'
            f'api_secret = "{API_SECRET}"\n[server]\nport = {self.port}\n'
            f'[persistence]\ndata_dir = "{work / "data"}"\n'
            f"[supervisor]\nreconcile_interval_s = 300\nworkers = {self.workers}\n"
            f"rooms_per_worker = {self.rooms_per_worker}\n"
            '[voice]\nproviders_factory = "tests.fakes.instant:providers"\n'
            '[llm]\ngreeting = ""\n[logging]\nformat = "json"\nlevel = "WARNING"\n'
        )
        self.store = work / "data" / "store.sqlite3"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(work / "daemon.log").open("wb"),
            cwd=ROOT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("daemon exited; see " + str(work / "daemon.log"))
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1):
                    if len(children(self.process.pid)) >= self.workers:
                        return
            time.sleep(0.2)
        raise RuntimeError("daemon not ready within 90 s; see " + str(work / "daemon.log"))

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid, *descendants(self.process.pid)]

    def agent_added_since(self, mark: int) -> tuple[list[float], int]:
        assert self.store is not None
        if not self.store.exists():
            return [], mark
        db = sqlite3.connect(f"file:{self.store}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute(
                "SELECT received_seq, data FROM events WHERE type = 'turn' AND received_seq > ?"
                " ORDER BY received_seq",
                (mark,),
            ).fetchall()
        finally:
            db.close()
        values = []
        for seq, data in rows:
            mark = max(mark, int(seq))
            turn = json.loads(data)
            added = turn.get("latency_ms", {}).get("agent_added")
            if turn.get("role") == "assistant" and added is not None:
                values.append(float(added))
        return values, mark

    def dropped_frames(self) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            text = r.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("voice_supervisor_audio_frames_dropped_total")
        )

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, 30)


class Peer(Agent):
    """livekit-agents 1.8.9 (bench/peer/agent.py) in its own venv, automatic dispatch."""

    name = "livekit-agents 1.8.9"

    def __init__(self, python: Path) -> None:
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None
        self.turns: Path | None = None

    def start(self, server: Server, work: Path) -> None:
        self.turns = work / "peer-turns.jsonl"
        self.turns.touch()
        self.log = work / "peer.log"
        log = self.log.open("wb")
        self.process = subprocess.Popen(
            [str(self.python), str(ROOT / "bench" / "peer" / "agent.py"), "start"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
            env={
                **os.environ,
                "LIVEKIT_URL": server.ws_url,
                "LIVEKIT_API_KEY": API_KEY,
                "LIVEKIT_API_SECRET": API_SECRET,
                "PEER_TURNS": str(self.turns),
                "PEER_HTTP_PORT": str(free_port()),
            },
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("peer agent exited; see " + str(self.log))
            if "registered worker" in self.log.read_text(errors="replace"):
                time.sleep(3)  # its idle job processes warm up
                return
            time.sleep(0.3)
        raise RuntimeError("peer worker did not register within 90 s; see " + str(self.log))

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid, *descendants(self.process.pid)]

    def agent_added_since(self, mark: int) -> tuple[list[float], int]:
        assert self.turns is not None
        lines = self.turns.read_text().splitlines()
        values = []
        for raw in lines[mark:]:
            with contextlib.suppress(ValueError, KeyError):
                values.append(float(json.loads(raw)["agent_added"]))
        return values, len(lines)

    def stop(self) -> None:
        if self.process is not None:
            leftovers = descendants(self.process.pid)
            stop(self.process, 30)
            for pid in leftovers:
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)


def create_rooms(server: Server, names: list[str]) -> None:
    """Create rooms through the server API (the webhook then dispatches the agent)."""
    import asyncio

    from livekit import api

    async def go() -> None:
        lk = api.LiveKitAPI(server.http_url, API_KEY, API_SECRET)
        try:
            for name in names:
                await lk.room.create_room(
                    api.CreateRoomRequest(
                        name=name,
                        empty_timeout=60,
                        metadata=json.dumps({"conversation_id": name}),
                    )
                )
        finally:
            await lk.aclose()

    asyncio.run(go())


def python_loadgen(period: float) -> list[str]:
    """Callers on the rtc SDK (bench/_load_proc.py): what bench/rooms.py used first."""
    return [sys.executable, str(ROOT / "bench" / "_load_proc.py"), "--period", str(period)]


def go_loadgen(work: Path, period: float) -> list[str]:
    """Callers on pion with pre-encoded Opus (bench/loadgen): several times cheaper per caller."""
    binary = work / "loadgen"
    subprocess.run(
        ["go", "build", "-o", str(binary), "."],
        cwd=ROOT / "bench" / "loadgen",
        check=True,
        env={**os.environ, "GOTOOLCHAIN": "local"},
    )
    packets = work / "packets.json"
    with packets.open("w") as out:
        subprocess.run([sys.executable, str(ROOT / "bench" / "_opus.py")], stdout=out, check=True)
    return [str(binary), "-packets", str(packets), "-period", str(period)]


def start_load(server: Server, names: list[str], command: list[str]) -> LoadProc:
    process = subprocess.Popen(
        [
            *command,
            "--url",
            server.ws_url,
            "--key",
            API_KEY,
            "--secret",
            API_SECRET,
            "--rooms",
            ",".join(names),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    proc = LoadProc(process, len(names))
    threading.Thread(target=proc.read, daemon=True).start()
    return proc


def snapshot(pids: list[int]) -> tuple[float, float, float]:
    return (
        sum(cpu_s(p) for p in pids),
        sum(rss_mb(p) for p in pids),
        sum(pss_mb(p) for p in pids),
    )


@contextlib.contextmanager
def running(agent: Agent, work: Path) -> Iterator[Server]:
    url = agent.webhook_url()
    server = start_livekit(work, [url] if url else [])
    try:
        agent.start(server, work)
        yield server
    finally:
        try:
            agent.stop()
        finally:
            stop(server.process)


def ramp(
    agent: Agent,
    steps: list[int],
    *,
    hold_s: float,
    period: float,
    per_proc: int,
    create: bool,
    deadline: float,
    loadgen: str,
) -> dict[str, Any]:
    """Ramp ``agent`` through ``steps`` (room counts); a row per step and the summary."""
    work = Path(tempfile.mkdtemp(prefix="bench-rooms-"))
    rows: list[dict[str, Any]] = []
    loads: list[LoadProc] = []
    print(f"\n{agent.name}  (work dir {work})")
    header = (
        f"{'rooms':>6}{'turns':>7}{'miss%':>7}{'add p50':>9}{'add p99':>9}{'caller p50':>11}"
        f"{'caller p99':>11}{'dropped':>8}{'RSS MB':>8}{'MB/room':>8}{'cpu%':>7}"
        f"{'cpu ms/room·s':>14}{'load1':>7}"
    )
    print(header, flush=True)
    command = go_loadgen(work, period) if loadgen == "go" else python_loadgen(period)
    with running(agent, work) as server:
        time.sleep(2)
        _, idle_rss, idle_pss = snapshot(agent.pids())
        _, mark = agent.agent_added_since(0)
        rooms = 0
        for target in steps:
            if time.monotonic() + hold_s + 60 > deadline:
                print("(stopping: time budget)")
                break
            names = [f"r{n}" for n in range(rooms, target)]
            if create:
                create_rooms(server, names)
            new = [
                start_load(server, names[i : i + per_proc], command)
                for i in range(0, len(names), per_proc)
            ]
            loads += new
            end = time.monotonic() + 60
            while any(p.ready < 0 for p in new) and time.monotonic() < end:
                time.sleep(0.2)
            ready = sum(max(0, p.ready) for p in loads)
            rooms = target
            time.sleep(min(period, 4.0))  # let the new callers reach their first turns
            pids = agent.pids()
            cpu0, _, _ = snapshot(pids)
            drop0 = agent.dropped_frames()
            _, mark = agent.agent_added_since(mark)
            lg_cpu0 = sum(cpu_s(p.process.pid) for p in loads)
            caller_from = time.monotonic()
            t0 = time.monotonic()
            time.sleep(hold_s)
            elapsed = time.monotonic() - t0
            pids = agent.pids()
            cpu1, rss, pss = snapshot(pids)
            drop1 = agent.dropped_frames()
            added, mark = agent.agent_added_since(mark)
            lg_cpu = sum(cpu_s(p.process.pid) for p in loads) - lg_cpu0
            caller = [ms for p in loads for at, ms in p.turns_ms if at >= caller_from]
            # Bursts spoken in the window, less the last second's (answered after it closes).
            expected = (
                sum(
                    1
                    for p in loads
                    for at in p.bursts
                    if caller_from <= at < caller_from + elapsed - 1
                )
                or rooms * elapsed / period
            )
            row: dict[str, Any] = {
                "rooms": rooms,
                "callers_ready": ready,
                "window_s": round(elapsed, 1),
                "turns": len(added),
                "expected_turns": round(expected),
                "missing_pct": round(max(0.0, 100 * (1 - len(added) / expected)), 1),
                "agent_added_ms_p50": round(percentile(added, 50), 2),
                "agent_added_ms_p99": round(percentile(added, 99), 2),
                "caller_turn_ms_p50": round(percentile(caller, 50), 1),
                "caller_turn_ms_p99": round(percentile(caller, 99), 1),
                "frames_dropped": drop1 - drop0,
                "rss_mb": round(rss, 1),
                "rss_mb_idle": round(idle_rss, 1),
                "rss_mb_per_room": round((rss - idle_rss) / rooms, 2),
                "pss_mb": round(pss, 1),
                "pss_mb_per_room": round((pss - idle_pss) / rooms, 2),
                "processes": len(pids),
                "cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 1),
                "cpu_ms_per_room_s": round(1000 * (cpu1 - cpu0) / elapsed / rooms, 3),
                "loadgen_cpu_pct": round(100 * lg_cpu / elapsed, 1),
                "loadavg": [round(x, 2) for x in os.getloadavg()],
            }
            row["ok"] = bool(
                ready == rooms
                and added
                and row["agent_added_ms_p99"] <= P99_LIMIT_MS
                and row["frames_dropped"] == 0
                and answers_ok(row)
            )
            rows.append(row)
            print(
                f"{rooms:>6}{len(added):>7}{row['missing_pct']:>7}"
                f"{row['agent_added_ms_p50']:>9}{row['agent_added_ms_p99']:>9}"
                f"{row['caller_turn_ms_p50']:>11}{row['caller_turn_ms_p99']:>11}"
                f"{row['frames_dropped']:>8.0f}{row['rss_mb']:>8}{row['rss_mb_per_room']:>8}"
                f"{row['cpu_pct']:>7}{row['cpu_ms_per_room_s']:>14}{row['loadavg'][0]:>7}"
                + ("" if row["ok"] else "  FAIL"),
                flush=True,
            )
            if not row["ok"]:
                break
        for p in loads:
            with contextlib.suppress(OSError):
                p.process.terminate()
        for p in loads:
            try:
                p.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.process.kill()
    return summarize(agent.name, rows)


def answers_ok(row: dict[str, Any]) -> bool:
    """At most 10% of the answers missing; one is allowed at small room counts (a burst at the
    window's edge), where a single turn is already more than 10%."""
    return bool(row["missing_pct"] <= 10 or row["expected_turns"] - row["turns"] <= 1)


def summarize(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in rows if r["ok"]]
    best = good[-1] if good else None
    limited_by = "max rooms reached"
    if rows and not rows[-1]["ok"]:
        bad = rows[-1]
        reasons = []
        if bad["callers_ready"] < bad["rooms"]:
            reasons.append(f"only {bad['callers_ready']} callers joined")
        if not bad["agent_added_ms_p99"] <= P99_LIMIT_MS:
            reasons.append(f"agent-added p99 {bad['agent_added_ms_p99']} ms")
        if bad["frames_dropped"]:
            reasons.append(f"{bad['frames_dropped']:.0f} frames dropped")
        if not answers_ok(bad):
            reasons.append(f"{bad['missing_pct']}% answers missing")
        limited_by = f"at {bad['rooms']} rooms: " + ", ".join(reasons)
    return {
        "agent": name,
        "max_rooms": best["rooms"] if best else 0,
        "rss_mb_per_room": best["rss_mb_per_room"] if best else None,
        "pss_mb_per_room": best["pss_mb_per_room"] if best else None,
        "cpu_ms_per_room_s": best["cpu_ms_per_room_s"] if best else None,
        "agent_added_ms_p99_at_max": best["agent_added_ms_p99"] if best else None,
        "limited_by": limited_by,
        "steps": rows,
    }


def ramp_steps(max_rooms: int, step: int) -> list[int]:
    steps = [n for n in (2, 5, 10, 20) if n < step and n <= max_rooms]
    steps += list(range(step, max_rooms + 1, step))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--max-rooms", type=int, default=200)
    parser.add_argument("--step", type=int, default=20)
    parser.add_argument("--hold", type=float, default=20.0, help="seconds measured per step")
    parser.add_argument("--period", type=float, default=4.0, help="seconds between bursts")
    parser.add_argument("--per-proc", type=int, default=50, help="callers per load process")
    parser.add_argument(
        "--loadgen",
        choices=("go", "python"),
        default="go",
        help="callers on pion (bench/loadgen, needs go) or on the rtc SDK (bench/_load_proc.py)",
    )
    parser.add_argument("--budget", type=float, default=900.0, help="seconds per setting")
    parser.add_argument("--workers", default="1,cores", help="settings to run, e.g. 1,cores")
    parser.add_argument(
        "--peer-python",
        type=Path,
        default=None,
        help="python of a venv with bench/peer/requirements.txt: also ramp livekit-agents",
    )
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    steps = ramp_steps(args.max_rooms, args.step)
    result: dict[str, Any] = {
        "cores": cores,
        "hold_s": args.hold,
        "period_s": args.period,
        "callers_per_load_process": args.per_proc,
        "loadgen": args.loadgen,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    for setting in [w for w in args.workers.split(",") if w and w != "none"]:
        workers = cores if setting == "cores" else int(setting)
        agent = Daemon(workers, rooms_per_worker=10_000)
        summary = ramp(
            agent,
            steps,
            hold_s=args.hold,
            period=args.period,
            per_proc=args.per_proc,
            create=True,
            deadline=time.monotonic() + args.budget,
            loadgen=args.loadgen,
        )
        used = min(workers, cores)
        summary["workers"] = workers
        summary["max_rooms_per_core"] = round(summary["max_rooms"] / used, 1)
        key = "workers_cores" if setting == "cores" else f"workers_{workers}"
        result[key] = summary
        print(
            f"{key}: max rooms {summary['max_rooms']} ({summary['max_rooms_per_core']}/core), "
            f"{summary['rss_mb_per_room']} MB/room, {summary['cpu_ms_per_room_s']} cpu ms/room·s, "
            f"p99 {summary['agent_added_ms_p99_at_max']} ms; limit: {summary['limited_by']}",
            flush=True,
        )
    if args.peer_python:
        peer = ramp(
            Peer(args.peer_python),
            steps,
            hold_s=args.hold,
            period=args.period,
            per_proc=args.per_proc,
            create=True,
            deadline=time.monotonic() + args.budget,
            loadgen=args.loadgen,
        )
        peer["max_rooms_per_core"] = round(peer["max_rooms"] / cores, 1)
        result["peer"] = peer
        ours = result.get("workers_cores")
        if ours and peer["max_rooms"]:
            result["ratios"] = {
                "rooms_per_core": round(ours["max_rooms_per_core"] / peer["max_rooms_per_core"], 2),
                "rss_mb_per_room": round(peer["rss_mb_per_room"] / ours["rss_mb_per_room"], 2)
                if ours["rss_mb_per_room"]
                else None,
                "cpu_ms_per_room_s": round(peer["cpu_ms_per_room_s"] / ours["cpu_ms_per_room_s"], 2)
                if ours["cpu_ms_per_room_s"]
                else None,
            }
        print(
            f"peer: max rooms {peer['max_rooms']} ({peer['max_rooms_per_core']}/core), "
            f"{peer['rss_mb_per_room']} MB/room, {peer['cpu_ms_per_room_s']} cpu ms/room·s; "
            f"limit: {peer['limited_by']}; ratios {result.get('ratios')}",
            flush=True,
        )
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_result(args.json, result)


if __name__ == "__main__":
    main()
