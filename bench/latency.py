"""The agent's own added latency per turn, with zero-latency fake providers in a real room.

A caller bot speaks N turns into a room served by the daemon (in this process, against a real
livekit-server). The fakes answer instantly, so what is measured is the agent: from the final
transcript to the first TTS audio frame captured into the ``AudioSource`` (``agent_added``),
with the stages in between (LLM first token, TTS first audio).

    python bench/latency.py --turns 50 --json bench/results/latency.json
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
import numpy as np
from livekit import api

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from actors.persistence import EmbeddedStore  # noqa: E402
from actors.room import Providers, dispose_rtc  # noqa: E402
from bench._results import write_result  # noqa: E402
from supervisor import Daemon  # noqa: E402
from tests.conftest import daemon_config  # noqa: E402
from tests.fakes.instant import EchoLlm, InstantStt, ToneTts  # noqa: E402
from tests.harness.livekit_server import free_port, start_server  # noqa: E402
from tests.harness.waits import poll_until  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def tone(seconds: float, rate: int = 48_000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * math.pi * 300 * t) * 9000).astype(np.int16).tobytes()


async def run(turns: int, local: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    port = free_port()
    server = start_server(work, [f"http://127.0.0.1:{port}/webhook"])
    stt, llm, tts = InstantStt(silence_ms=200), EchoLlm(), ToneTts(ms_per_word=30)
    config = daemon_config(
        server, port, work / "data", voice={"enabled": True}, llm={"greeting": ""}
    )
    # --local: the embedded providers (pocketsphinx, scripted LLM, hibari) from the config.
    daemon = Daemon(config, providers=None if local else Providers(stt, llm, tts))
    lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            await lk.room.create_room(
                api.CreateRoomRequest(
                    name="bench-latency", metadata=json.dumps({"conversation_id": "bench"})
                )
            )
            stt.script.extend(f"turn number {i}" for i in range(turns))
            # The caller runs in a process of its own: its audio and event handling would
            # otherwise share this event loop and be counted as the agent's latency.
            result = await anyio.run_process(
                [
                    sys.executable,
                    str(ROOT / "bench" / "_caller_proc.py"),
                    "--url",
                    server.ws_url,
                    "--key",
                    server.api_key,
                    "--secret",
                    server.api_secret,
                    "--room",
                    "bench-latency",
                    "--turns",
                    str(turns),
                    *(["--voice-to-voice"] if local else []),
                ],
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError("caller failed: " + result.stderr.decode()[-2000:])
            store = EmbeddedStore(config.persistence.store_path)
            events = await poll_until(
                lambda: (
                    (e := store.events(["turn"]))
                    and sum(1 for x in e if x["data"]["role"] == "assistant") >= turns
                    and e
                ),
                deadline_s=10,
                what="stored turns",
            )
            daemon.request_stop()
        dispose_rtc()
    finally:
        await lk.aclose()
        server.stop()
    answers = [e["data"]["latency_ms"] for e in events if e["data"]["role"] == "assistant"]
    v2v = [
        float(line.split()[1])
        for line in result.stdout.decode().splitlines()
        if line.startswith("v2v_ms ")
    ]
    stages: dict[str, dict[str, float]] = {}
    for stage in ("llm_first_token", "tts_first_audio", "agent_added"):
        values = [a[stage] for a in answers if stage in a]
        stages[stage] = {
            "p50": round(percentile(values, 50), 3),
            "p99": round(percentile(values, 99), 3),
            "max": round(max(values), 3),
        }
    out: dict[str, Any] = {
        "providers": "local" if local else "zero-latency fakes",
        "turns": len(answers),
        "agent_added_ms": stages["agent_added"],
        "stages_ms": stages,
    }
    if v2v:
        # From the end of the caller's speech to the agent's first audible audio at the caller:
        # includes the STT's end-of-turn silence (endpointing_ms) and the network both ways.
        out["voice_to_voice_ms"] = {"p50": round(percentile(v2v, 50), 1), "max": round(max(v2v), 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--local",
        action="store_true",
        help="the embedded providers instead of zero-latency fakes; also "
        "measures voice-to-voice time at the caller",
    )
    args = parser.parse_args()
    result = anyio.run(run, args.turns, args.local, backend="asyncio")
    print(f"{'stage (ms)':<20}{'p50':>10}{'p99':>10}{'max':>10}")
    for stage, figures in result["stages_ms"].items():
        print(f"{stage:<20}{figures['p50']:>10}{figures['p99']:>10}{figures['max']:>10}")
    print(f"turns: {result['turns']} ({result['providers']})")
    if "voice_to_voice_ms" in result:
        v2v = result["voice_to_voice_ms"]
        print(f"voice to voice (ms): p50 {v2v['p50']}, max {v2v['max']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_result(args.json, result)


if __name__ == "__main__":
    main()
