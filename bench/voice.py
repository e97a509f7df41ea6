"""Turn-taking as a caller hears it: the local providers in real rooms, callers in own processes.

The daemon runs in this process with the shipped local providers (pocketsphinx with its VAD and
end-of-turn detection, the scripted LLM, hibari) against a real livekit-server. Each room gets a
caller in a process of its own (``bench/_voice_caller.py``) that speaks, in hibari's voice:
complete questions, questions with a 600–800 ms thinking pause in the middle, backchannels and
a noise burst while the agent tells a story, and real barge-ins. Measured at the caller:

- ``voice_to_voice_ms``: end of the caller's speech → first audible agent audio (p50, p95);
- ``false_cutoff_rate``: paused questions the agent answered into the pause (or split in two);
- ``false_interruption_rate``: backchannels and noise after which the agent stopped talking;
- ``missed_barge_in_rate``: real barge-ins the agent talked through;
- ``cpu_ms_per_room_s``: this process's CPU (the daemon: every thread) per room-second.

    python bench/voice.py --rooms 2 --json bench/results/voice.json
    python bench/voice.py --stt min_endpointing_ms=800   # any [stt] setting, for a trade-off
    python bench/voice.py --voice audio_out_queue_ms=100  # any [voice] setting
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from livekit import api

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from actors.persistence import EmbeddedStore  # noqa: E402
from actors.room import dispose_rtc  # noqa: E402
from bench._results import write_result  # noqa: E402
from supervisor import Daemon  # noqa: E402
from tests.conftest import daemon_config  # noqa: E402
from tests.harness.livekit_server import LiveKitServer, free_port, start_server  # noqa: E402
from tests.harness.waits import poll_until  # noqa: E402

STORY = (
    "Once upon a time a small boat left the harbour at dawn. The sea was calm and the sky was "
    "grey. After a few hours the wind rose and the waves grew tall. The sailors pulled down "
    "the sails and held on to the ropes. By the evening the storm had passed, and the boat "
    "came home safely with a full load of fish."
)
STAGES = (
    "end_of_turn",
    "stt_final",
    "llm_first_token",
    "tts_first_audio",
    "agent_added",
    "voice_to_voice",
)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def rate(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 3) if flags else float("nan")


async def call(server: LiveKitServer, room: str) -> list[dict[str, Any]]:
    result = await anyio.run_process(
        [
            sys.executable,
            str(ROOT / "bench" / "_voice_caller.py"),
            "--url",
            server.ws_url,
            "--key",
            server.api_key,
            "--secret",
            server.api_secret,
            "--room",
            room,
        ],
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"caller of {room} failed: " + result.stderr.decode()[-3000:])
    return [json.loads(line) for line in result.stdout.decode().splitlines() if line[:1] == "{"]


async def run(rooms: int, stt: dict[str, Any], voice: dict[str, Any]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    port = free_port()
    server = start_server(work, [f"http://127.0.0.1:{port}/webhook"])
    config = daemon_config(
        server,
        port,
        work / "data",
        voice={"enabled": True, **voice},
        llm={"greeting": "", "rules": [{"match": "story|tell me a", "reply": STORY}]},
        **({"stt": stt} if stt else {}),
    )
    daemon = Daemon(config)  # providers from the config: the offline defaults
    lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            names = [f"bench-voice-{i}" for i in range(rooms)]
            for name in names:
                await lk.room.create_room(
                    api.CreateRoomRequest(
                        name=name, metadata=json.dumps({"conversation_id": f"c-{name}"})
                    )
                )
            registry = daemon.registry
            assert registry is not None
            await poll_until(
                lambda: all(n in registry.joined for n in names), deadline_s=20, what="agents"
            )
            cpu0, wall0 = time.process_time(), time.monotonic()

            async def one(name: str) -> None:
                results[name] = await call(server, name)

            async with anyio.create_task_group() as callers:
                for name in names:
                    callers.start_soon(one, name)
            cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
            daemon.request_stop()
        dispose_rtc()
    finally:
        await lk.aclose()
        server.stop()
    store = EmbeddedStore(config.persistence.store_path)
    answers = [
        e["data"].get("latency_ms") or {}
        for e in store.events(["turn"])
        if e["data"]["role"] == "assistant"
    ]
    scenarios = [s for room in results.values() for s in room]
    v2v = [s["v2v_ms"] for s in scenarios if s["kind"] in ("complete", "paused") and s["v2v_ms"]]
    cutoffs = [bool(s["cutoff"]) for s in scenarios if s["kind"] == "paused"]
    false_stops = [bool(s.get("stopped")) for s in scenarios if s["kind"] == "backchannel"]
    missed = [not s.get("stopped") for s in scenarios if s["kind"] == "barge_in"]
    stages: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        values = [a[stage] for a in answers if stage in a]
        if values:
            stages[stage] = {
                "p50": round(percentile(values, 50), 1),
                "p95": round(percentile(values, 95), 1),
            }
    return {
        "rooms": rooms,
        "voice_to_voice_ms": {
            "p50": round(percentile(v2v, 50), 1),
            "p95": round(percentile(v2v, 95), 1),
            "max": round(max(v2v), 1) if v2v else float("nan"),
            "n": len(v2v),
        },
        "false_cutoff_rate": rate(cutoffs),
        "false_cutoff_rate_by_pause": {
            after: rate([s["cutoff"] for s in scenarios if s.get("pause_after") == after])
            for after in ("function", "content")
        },
        "false_interruption_rate": rate(false_stops),
        "missed_barge_in_rate": rate(missed),
        "cpu_ms_per_room_s": round(1000 * cpu_s / (rooms * wall_s), 2),
        "agent_stages_ms": stages,
        "counts": {
            "paused": len(cutoffs),
            "backchannels": len(false_stops),
            "barge_ins": len(missed),
            "unanswered": sum(
                1
                for s in scenarios
                if s["kind"] in ("complete", "paused") and not s["v2v_ms"] and not s.get("cutoff")
            ),
        },
        "stt": config.stt.model_dump(mode="json", exclude={"api_key"}),
        "voice": config.voice.model_dump(mode="json"),
        "scenarios": scenarios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--stt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an [stt] setting for this run (JSON value, else a string); repeatable",
    )
    parser.add_argument(
        "--voice",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a [voice] setting for this run (JSON value, else a string); repeatable",
    )
    args = parser.parse_args()
    stt, voice = (
        {k: _value(v) for k, _, v in (i.partition("=") for i in items)}
        for items in (args.stt, args.voice)
    )
    result = anyio.run(run, args.rooms, stt, voice, backend="asyncio")
    v2v = result["voice_to_voice_ms"]
    print(f"voice to voice (ms)       p50 {v2v['p50']}, p95 {v2v['p95']}, max {v2v['max']}")
    print(
        f"false cut-offs            {result['false_cutoff_rate']} "
        f"(by the word before the pause: {result['false_cutoff_rate_by_pause']})"
    )
    print(f"false interruptions       {result['false_interruption_rate']}")
    print(f"missed barge-ins          {result['missed_barge_in_rate']}")
    print(f"CPU ms per room-second    {result['cpu_ms_per_room_s']}")
    for stage, figures in result["agent_stages_ms"].items():
        print(f"  {stage:<22}  p50 {figures['p50']}, p95 {figures['p95']}")
    print(f"counts: {result['counts']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_result(args.json, result)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


if __name__ == "__main__":
    main()
