"""A participant floods the agent; what was refused, what memory it cost, how fast ping is after.

Starts livekit-server and the daemon (a subprocess, rooms in its own process, no voice), opens
one room, and lets a role-less participant send, all at once: oversized chat streams, uploads,
command packets and command streams. The daemon's RSS is sampled throughout; its /metrics give
what was refused and why; then a second participant times ``ping`` round trips.

    python bench/flood.py --json bench/results/flood.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from livekit import api, rtc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._daemon_proc import daemon_under_test  # noqa: E402
from bench._results import write_result  # noqa: E402
from bench.join import percentile, rss_mb  # noqa: E402
from tests.harness.participants import joined  # noqa: E402

_METRIC = re.compile(
    r'^voice_supervisor_data_messages_total\{result="(\w+)",topic="([\w.]+)"\} ([\d.e+]+)$'
)


def data_metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match:
            key = f"{match.group(2)}:{match.group(1)}"
            counts[key] = counts.get(key, 0.0) + float(match.group(3))
    return counts


async def flood(room: rtc.Room, args: argparse.Namespace) -> int:
    lp = room.local_participant
    sent = 0

    async def chat() -> None:
        await lp.send_text("x" * 6000, topic="lk.chat")

    async def upload(i: int) -> None:
        await lp.send_bytes(
            b"u" * args.upload_kb * 1024,
            name=f"f{i}.txt",
            mime_type="text/plain",
            topic="agent.file",
        )

    async def command_stream(i: int) -> None:
        await lp.send_text(json.dumps({"id": f"s{i}", "command": "status"}), topic="agent.command")

    jobs = (
        [chat() for _ in range(args.chats)]
        + [upload(i) for i in range(args.uploads)]
        + [command_stream(i) for i in range(args.command_streams)]
    )
    sent += len(jobs)
    await asyncio.gather(*jobs, return_exceptions=True)
    for i in range(args.packets):
        payload = json.dumps({"id": f"p{i}", "command": "say", "text": "obey"}).encode()
        await lp.publish_data(payload, reliable=True, topic="agent.command")
        sent += 1
    return sent


async def ping_times(room: rtc.Room, count: int) -> list[float]:
    replies: dict[str, asyncio.Event] = {}

    @room.on("data_received")
    def _reply(packet: rtc.DataPacket) -> None:
        if packet.topic == "agent.reply":
            event = replies.get(json.loads(packet.data).get("id", ""))
            if event is not None:
                event.set()

    # A stream sent before the agent has seen us join is lost: ask until the first answer.
    for i in range(30):
        replies[f"hello-{i}"] = asyncio.Event()
        await room.local_participant.send_text(
            json.dumps({"id": f"hello-{i}", "command": "ping"}), topic="agent.command"
        )
        try:
            await asyncio.wait_for(replies[f"hello-{i}"].wait(), 1)
            break
        except TimeoutError:
            continue
    times: list[float] = []
    for i in range(count):
        item = f"ping-{i}"
        replies[item] = asyncio.Event()
        start = time.perf_counter()
        await room.local_participant.send_text(
            json.dumps({"id": item, "command": "ping"}), topic="agent.command"
        )
        await asyncio.wait_for(replies[item].wait(), 10)
        times.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(1.05)  # the default quota: 60 commands a minute per participant
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=200, help="oversized chat streams")
    parser.add_argument("--uploads", type=int, default=60)
    parser.add_argument("--upload-kb", type=int, default=1024)
    parser.add_argument("--command-streams", type=int, default=200)
    parser.add_argument("--packets", type=int, default=2000)
    parser.add_argument("--pings", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args()

    samples: list[float] = []
    sampling = threading.Event()
    extra = "[voice]\nenabled = false\n[supervisor]\nreconcile_interval_s = 300\nworkers = 0\n"
    async with daemon_under_test("bench-flood-", extra) as daemon:
        server, port = daemon.server, daemon.port

        def sample() -> None:
            while not sampling.is_set():
                samples.append(rss_mb(daemon.pid))
                sampling.wait(0.05)

        async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
            await daemon.wait_log("voice-supervisor listening", 1, 30)
            await lk.room.create_room(
                api.CreateRoomRequest(name="flood", metadata=json.dumps({"conversation_id": "c"}))
            )
            await daemon.wait_log("room joined", 1, 30)
            async with joined(server, "flood", "probe") as probe:
                warm = await ping_times(probe, args.pings)
                before_metrics = data_metrics(port)
                before = rss_mb(daemon.pid)
                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                async with joined(server, "flood", "flooder") as attacker:
                    started = time.perf_counter()
                    sent = await flood(attacker, args)
                    flood_s = time.perf_counter() - started
                after_pings = await ping_times(probe, args.pings)
                sampling.set()
                sampler.join()
                after = rss_mb(daemon.pid)
                metrics = data_metrics(port)
    counts = {k: round(v - before_metrics.get(k, 0.0)) for k, v in metrics.items()}
    result: dict[str, Any] = {
        "sent": sent,
        "flood_s": round(flood_s, 2),
        "results": {k: v for k, v in sorted(counts.items()) if v},
        "refused": sum(
            v for k, v in counts.items() if k.split(":")[1] in ("over_quota", "forbidden")
        ),
        "rss_mb": {
            "before": round(before, 1),
            "peak": round(max(samples, default=after), 1),
            "after": round(after, 1),
        },
        "ping_ms": {
            "before_p50": round(statistics.median(warm), 2),
            "after_p50": round(statistics.median(after_pings), 2),
            "after_p95": round(percentile(after_pings, 95), 2),
            "after_max": round(max(after_pings), 2),
        },
    }

    print(f"{'metric':<34}{'value':>12}")
    print(f"{'requests sent':<34}{result['sent']:>12}")
    print(f"{'refused (over quota, forbidden)':<34}{result['refused']:>12}")
    for key, value in result["results"].items():
        print(f"{'  ' + key:<34}{value:>12}")
    for key, value in result["rss_mb"].items():
        print(f"{'RSS ' + key + ' (MB)':<34}{value:>12}")
    for key, value in result["ping_ms"].items():
        print(f"{'ping ' + key + ' (ms)':<34}{value:>12}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_result(args.json, result)


if __name__ == "__main__":
    asyncio.run(main())
