"""What a tool round trip adds to a reply, agent side, with a zero-latency tool.

The daemon (in this process, against a real livekit-server) answers chat turns with zero-latency
fakes: the scripted LLM, a tone TTS. Every other turn asks for an order's status, which the
scripted LLM answers by calling the reference backend's demo tool ``order_status`` (a
constant answer) over HTTP; the backend runs in a process of its own, as a team's would. Each
stored reply's ``agent_added`` (the user's turn → its first audio frame) is compared between
plain turns and tool turns: the difference is the round trip as the agent sees it (the
model's call, the arguments' validation, the HTTP invocation with its idempotency key, the
events, the model's second round).

    python bench/tools.py --turns 100 --json bench/results/tools.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process
from livekit import api, rtc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from actors.persistence import EmbeddedStore  # noqa: E402
from actors.providers import Rule, ScriptedLlm  # noqa: E402
from actors.room import Providers, dispose_rtc  # noqa: E402
from bench._results import write_result  # noqa: E402
from supervisor import Daemon  # noqa: E402
from tests.conftest import daemon_config  # noqa: E402
from tests.fakes.instant import InstantStt, ToneTts  # noqa: E402
from tests.harness.livekit_server import free_port, start_server  # noqa: E402
from tests.harness.waits import poll_until  # noqa: E402

ROOM = "bench-tools"
RULE = Rule(
    match=r"order (?P<order_id>\w+)", tool="order_status", arguments={"order_id": "{order_id}"}
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def figures(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
    }


async def _backend(work: Path) -> tuple[Process, str]:
    port = free_port()
    command = [sys.executable, "-m", "supervisor", "backend", "--db", str(work / "backend.sqlite3")]
    process = await anyio.open_process([*command, "--port", str(port)])
    assert process.stdout is not None
    with anyio.fail_after(30):
        line = b""
        while b"listening" not in line:
            line += await process.stdout.receive()
    return process, f"http://127.0.0.1:{port}"


async def run(turns: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-tools-"))
    port = free_port()
    server = start_server(work, [f"http://127.0.0.1:{port}/webhook"])
    backend, backend_url = await _backend(work)
    config = daemon_config(
        server,
        port,
        work / "data",
        voice={"enabled": True},
        persistence={"backend_url": backend_url},
        tool_calls={"filler_after_ms": 10_000},  # never: a filler is not the round trip
        data={"chat_per_minute": 100_000, "burst": 10_000},  # the caller chats fast
    )
    llm = ScriptedLlm(rules=[RULE])
    daemon = Daemon(config, providers=Providers(InstantStt(), llm, ToneTts(ms_per_word=30)))
    lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
    store = EmbeddedStore(work / "backend.sqlite3")
    caller = rtc.Room()
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            metadata = json.dumps({"conversation_id": "bench"})
            await lk.room.create_room(api.CreateRoomRequest(name=ROOM, metadata=metadata))
            grants = api.VideoGrants(room_join=True, room=ROOM)
            token = (
                api.AccessToken(server.api_key, server.api_secret)
                .with_identity("bench-caller")
                .with_grants(grants)
                .to_jwt()
            )
            await caller.connect(server.ws_url, token)
            registry = daemon.registry
            assert registry is not None
            await poll_until(lambda: ROOM in registry.joined, deadline_s=10, what="agent joined")
            for i in range(2 * turns):
                text = f"where is order {i}" if i % 2 else f"plain turn {i}"
                await caller.local_participant.send_text(text, topic="lk.chat")
                await _answered(store, i + 1)
            await caller.disconnect()
            daemon.request_stop()
        dispose_rtc()
    finally:
        await lk.aclose()
        server.stop()
        backend.terminate()
        await backend.wait()
    replies = [e["data"] for e in store.events(["turn"]) if e["data"]["role"] == "assistant"]
    plain = [r["latency_ms"]["agent_added"] for r in replies if r["content"].startswith("You")]
    tool = [r["latency_ms"]["agent_added"] for r in replies if r["content"].startswith("Order")]
    calls = [e["data"]["duration_ms"] for e in store.events(["tool_result"])]
    store.close()
    plain_f, tool_f = figures(plain), figures(tool)
    return {
        "turns": {"plain": len(plain), "tool": len(tool)},
        "agent_added_ms": {"plain": plain_f, "tool": tool_f},
        "added_by_the_tool_ms": {
            "p50": round(tool_f["p50"] - plain_f["p50"], 3),
            "p99": round(tool_f["p99"] - plain_f["p99"], 3),
        },
        "tool_call_ms": figures(calls),
        "tool": "the reference backend's order_status (constant answer), its own process, HTTP",
    }


async def _answered(store: EmbeddedStore, count: int) -> None:
    def answers() -> bool:
        replies = [e for e in store.events(["turn"]) if e["data"]["role"] == "assistant"]
        return len(replies) >= count

    await poll_until(answers, deadline_s=10, what=f"answer {count}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=100, help="tool turns (as many plain)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = anyio.run(run, args.turns, backend="asyncio")
    print(f"{'agent_added (ms)':<22}{'p50':>10}{'p99':>10}{'max':>10}")
    for kind, f in result["agent_added_ms"].items():
        print(f"{kind:<22}{f['p50']:>10}{f['p99']:>10}{f['max']:>10}")
    call = result["tool_call_ms"]
    print(f"{'tool call':<22}{call['p50']:>10}{call['p99']:>10}{call['max']:>10}")
    added = result["added_by_the_tool_ms"]
    print(f"added by a tool round trip: p50 {added['p50']} ms, p99 {added['p99']} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_result(args.json, result)


if __name__ == "__main__":
    main()
