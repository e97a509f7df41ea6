"""Persistence throughput: simulated rooms emit turns into the real PersistenceActor, which
ships them to the reference backend (a subprocess) over loopback.

Measures the end-to-end rate (first emit → the backend has stored the last event), the cost of
``emit()`` for the room actor, and the outbox's disk use per 1,000 waiting turns. Lost and
duplicated events are counted from what the backend stored.

With ``--sink null`` the actor ships to a backend that only counts the event ids it receives
(another process, loopback HTTP, no storage): the actor's own capacity, without the reference
backend's SQLite writes.

    python bench/persistence.py --events 200000 --json bench/results/persistence.json
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from anyio.streams.text import TextReceiveStream
from prometheus_client import REGISTRY

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
from actors import Event, EventType  # noqa: E402
from actors.persistence import EmbeddedStore, PersistenceActor, PersistenceSettings  # noqa: E402
from bench._results import write_result  # noqa: E402

GOALS = {"events_per_s": 20_000, "enqueue_p99_us": 50}
# A realistic assistant turn: a sentence or two, the speaker, latency figures.
CONTENT = (
    "Sure, I can help with that. Your appointment is moved to Thursday at three in the "
    "afternoon; you will get a confirmation by email. "
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def make_turn(room: int, index: int, ids: str = "daemon") -> Event:
    data: dict[str, Any] = {
        "role": "assistant" if index % 2 else "user",
        "content": f"{CONTENT}#{room}/{index}",
        "speaker": None if index % 2 else f"caller-{room}",
        "interrupted": False,
        "latency_ms": {"stt": 81.2, "llm_first_token": 212.5, "tts_first_audio": 96.0},
        "user_id": f"user-{room}",
    }
    event = Event(EventType.TURN, f"bench-room-{room}", f"bench-conv-{room}", data, time.time())
    # "uuid4": random ids, as the daemon made before its ids were time-ordered; they show what
    # a random-key id index costs a backend.
    return event if ids == "daemon" else replace(event, id="EV_" + uuid.uuid4().hex)


def null_sink() -> None:
    """A backend that parses each batch, counts its event ids and stores nothing."""
    from collections import Counter

    import orjson
    from aiohttp import web

    seen: Counter[str] = Counter()

    async def batch(request: web.Request) -> web.Response:
        events = orjson.loads(await request.read())["events"]
        seen.update(e["id"] for e in events)
        return web.json_response({"accepted": len(events)})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"ids": list(seen), "received": sum(seen.values())})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/events:batch", batch)
    app.router.add_get("/stats", stats)

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site.port  # after start(): the port bound, not the 0 asked for
        sys.stdout.write(f"backend listening on http://127.0.0.1:{port}\n")
        sys.stdout.flush()
        await anyio.sleep_forever()

    anyio.run(serve, backend="asyncio")


async def start_backend(work: Path, sink: str) -> tuple[anyio.abc.Process, str]:
    command = (
        [sys.executable, str(HERE), "--serve-null"]
        if sink == "null"
        else [
            sys.executable,
            "-m",
            "supervisor",
            "backend",
            "--db",
            str(work / "backend.sqlite3"),
            "--port",
            "0",
        ]
    )
    process = await anyio.open_process(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = ""
    with anyio.fail_after(30):
        async for chunk in TextReceiveStream(process.stdout):
            line += chunk
            if "\n" in line:
                break
    return process, line.split()[-1]


async def throughput(args: argparse.Namespace, work: Path, url: str) -> dict[str, Any]:
    settings = PersistenceSettings(
        data_dir=work / "data",
        backend_url=url,
        batch_max=args.batch_max,
        flush_interval_ms=args.flush_ms,
        queue_max=max(100, args.events),
        outbox_name="bench",
    )
    store = EmbeddedStore(settings.store_path)
    actor = PersistenceActor(settings, store)
    per_room = args.events // args.rooms
    total = per_room * args.rooms
    # Events are built up front so that only emit() itself is timed.
    turns = [[make_turn(r, i, args.ids) for i in range(per_room)] for r in range(args.rooms)]
    enqueue_ns: list[int] = []

    async def room(events: list[Event]) -> None:
        clock = time.perf_counter_ns
        for start in range(0, len(events), args.burst):
            for event in events[start : start + args.burst]:
                t0 = clock()
                actor.emit(event)
                enqueue_ns.append(clock() - t0)
            await anyio.lowlevel.checkpoint()  # other rooms take their turn, as on a busy daemon

    async with anyio.create_task_group() as tg:
        await tg.start(actor.run)
        started = time.perf_counter()
        async with anyio.create_task_group() as rooms:
            for events in turns:
                rooms.start_soon(room, events)
        emitted_s = time.perf_counter() - started
        await actor.wait_empty()
        elapsed = time.perf_counter() - started
        actor.close()
    store.close()
    batches = REGISTRY.get_sample_value(
        "voice_supervisor_ship_batch_seconds_count", {"outbox": "bench"}
    )
    batch_sum = REGISTRY.get_sample_value(
        "voice_supervisor_ship_batch_seconds_sum", {"outbox": "bench"}
    )
    us = [ns / 1000 for ns in enqueue_ns]
    return {
        "events": total,
        "rooms": args.rooms,
        "seconds": round(elapsed, 3),
        "emit_seconds": round(emitted_s, 3),
        "events_per_s": round(total / elapsed),
        "enqueue_us": {
            "p50": round(percentile(us, 50), 2),
            "p99": round(percentile(us, 99), 2),
            "max": round(max(us), 1),
        },
        "batches": int(batches or 0),
        "batch_ms_mean": round(1000 * (batch_sum or 0) / max(1, batches or 0), 2),
        "expected": {f"bench-conv-{r}": [e.id for e in turns[r]] for r in range(args.rooms)},
    }


async def check_null_sink(url: str, expected: dict[str, list[str]]) -> dict[str, int]:
    """Lost and duplicated events, from the ids the null sink received."""
    import httpx

    async with httpx.AsyncClient() as client:
        stats = (await client.get(f"{url}/stats", timeout=60)).json()
    wanted = {i for ids in expected.values() for i in ids}
    return {
        "lost": len(wanted - set(stats["ids"])),
        "duplicates": stats["received"] - len(stats["ids"]),
        "out_of_order_conversations": 0,  # not observable without storage
    }


def check_backend(db: Path, expected: dict[str, list[str]]) -> dict[str, int]:
    """Lost, duplicated and out-of-order events, from what the backend stored."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT conversation_id, event_id, content FROM messages ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()
    stored: dict[str, list[str]] = {}
    for conversation, event_id, _ in rows:
        stored.setdefault(conversation, []).append(event_id)
    wanted = {i for ids in expected.values() for i in ids}
    got = [event_id for _, event_id, _ in rows]
    contents = [content for _, _, content in rows]
    out_of_order = sum(1 for c, ids in expected.items() if stored.get(c, []) != ids)
    return {
        "lost": len(wanted - set(got)),
        "duplicates": (len(got) - len(set(got))) + (len(contents) - len(set(contents))),
        "out_of_order_conversations": out_of_order,
    }


async def disk_use(work: Path, turns: int) -> dict[str, float]:
    """Outbox bytes per 1,000 turns waiting (the backend unreachable, nothing ships)."""
    settings = PersistenceSettings(
        data_dir=work / "disk",
        backend_url="http://127.0.0.1:9",  # the discard port: connections are refused
        retry_initial_s=60,
        retry_max_s=60,
        outbox_name="disk",
    )
    store = EmbeddedStore(settings.store_path)
    actor = PersistenceActor(settings, store)
    async with anyio.create_task_group() as tg:
        await tg.start(actor.run)
        for i in range(turns):
            actor.emit(make_turn(i % 50, i))
        await actor.flush()
        tg.cancel_scope.cancel()
    store.close()
    path = settings.outbox_path
    with_wal = sum(os.stat(p).st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    checkpointed = os.stat(path).st_size
    return {
        "turns": turns,
        "outbox_kb_per_1000_turns": round(with_wal / turns, 1),
        "outbox_kb_per_1000_turns_checkpointed": round(checkpointed / turns, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--burst", type=int, default=5, help="turns a room emits per loop turn")
    parser.add_argument("--batch-max", type=int, default=500)
    parser.add_argument("--flush-ms", type=int, default=20)
    parser.add_argument("--disk-turns", type=int, default=10_000)
    parser.add_argument(
        "--sink",
        choices=("reference", "null"),
        default="reference",
        help="reference: the reference backend (SQLite); null: a backend that stores nothing",
    )
    parser.add_argument(
        "--ids",
        choices=("daemon", "uuid4"),
        default="daemon",
        help="daemon: the daemon's time-ordered event ids; uuid4: random ids",
    )
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args()
    # The disk-use phase runs against an unreachable backend on purpose: keep its retries quiet.
    logging.basicConfig(level=logging.ERROR)

    work = Path(tempfile.mkdtemp(prefix="bench-persistence-"))
    backend, url = await start_backend(work, args.sink)
    try:
        result = await throughput(args, work, url)
        expected = result.pop("expected")
        if args.sink == "null":
            result.update(await check_null_sink(url, expected))
    finally:
        backend.terminate()
        await backend.wait()
    if args.sink == "reference":
        result.update(check_backend(work / "backend.sqlite3", expected))
    result["sink"] = args.sink
    result["load_average"] = os.getloadavg()[0]
    result["cpus"] = os.cpu_count()
    result["disk"] = await disk_use(work, args.disk_turns)
    result["settings"] = {
        "batch_max": args.batch_max,
        "flush_interval_ms": args.flush_ms,
        "ids": args.ids,
    }
    result["goals"] = GOALS

    rows = [
        ("events", f"{result['events']:,} from {result['rooms']} rooms, sink {args.sink}"),
        ("end to end", f"{result['events_per_s']:,} events/s ({result['seconds']} s)"),
        ("enqueue p50 / p99", f"{result['enqueue_us']['p50']} / {result['enqueue_us']['p99']} µs"),
        ("batches", f"{result['batches']:,}, mean {result['batch_ms_mean']} ms each"),
        ("lost / duplicates", f"{result['lost']} / {result['duplicates']}"),
        ("out-of-order conversations", str(result["out_of_order_conversations"])),
        ("machine", f"{result['cpus']} CPUs, load average {result['load_average']:.1f}"),
        (
            "outbox per 1,000 turns",
            f"{result['disk']['outbox_kb_per_1000_turns']} KB "
            f"({result['disk']['outbox_kb_per_1000_turns_checkpointed']} KB after a checkpoint)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    met = (
        result["events_per_s"] >= GOALS["events_per_s"]
        and result["enqueue_us"]["p99"] < GOALS["enqueue_p99_us"]
        and result["lost"] == 0
        and result["duplicates"] == 0
    )
    print("goals met" if met else "goals NOT met")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_result(args.json, result)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve-null"]:
        null_sink()
    else:
        anyio.run(main, backend="asyncio")
