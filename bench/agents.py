"""The floor between two agents of one room, as the caller hears it.

A real livekit-server, the daemon in this process with zero-latency fakes, a room with a
concierge and a specialist (``when_addressed``). Each round the caller asks a question the
concierge hands over ("That is one for Sam. Over to you, Sam."), and the specialist answers. A
silent listener in the room notes when each agent is audible (tests/harness/ears.py), so the
figures are what a caller hears on the subscribed tracks:

- hand-over: from the concierge's last audible frame to the specialist's first (p50/p95);
- overlap: how long both were audible at once (should be 0 ms).

    python bench/agents.py --rounds 20 --json bench/results/agents.json
    python bench/agents.py --rounds 20 --gap-ms 0   # the floor without its pause
    python bench/agents.py --rounds 20 --queue-ms 0  # tracks that stop between replies
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from livekit import api

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from actors.room import Providers, dispose_rtc  # noqa: E402
from bench._results import write_result  # noqa: E402
from supervisor import Daemon  # noqa: E402
from tests.conftest import daemon_config  # noqa: E402
from tests.e2e.conftest import tone  # noqa: E402
from tests.fakes.instant import ToneTts  # noqa: E402
from tests.fakes.team import HandOverLlm, TeamStt  # noqa: E402
from tests.harness.caller import caller  # noqa: E402
from tests.harness.ears import ears  # noqa: E402
from tests.harness.livekit_server import free_port, start_server  # noqa: E402
from tests.harness.waits import poll_until  # noqa: E402

AVA, SAM = "agent-ava", "agent-sam"
PROFILES = {
    "concierge": {"identity": AVA, "name": "Ava"},
    "specialist": {"identity": SAM, "name": "Sam", "speaks": "when_addressed"},
}
ANSWER = "You said: I have a mortgage question."


def _answered(finals: Callable[[str], list[str]], count: int) -> bool:
    return finals(SAM).count(ANSWER) >= count


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


async def run(rounds: int, gap_ms: int, queue_ms: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    port = free_port()
    server = start_server(work, [f"http://127.0.0.1:{port}/webhook"])
    stt = TeamStt(silence_ms=200)
    config = daemon_config(
        server,
        port,
        work / "data",
        voice={"enabled": True, "floor_gap_ms": gap_ms, "team_audio_out_queue_ms": queue_ms},
        agents=PROFILES,
    )
    providers = Providers(stt, HandOverLlm({"mortgage": "Sam"}), ToneTts(ms_per_word=60))
    daemon = Daemon(config, providers=providers)
    lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
    hand_overs: list[float] = []
    overlaps: list[float] = []
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            metadata = json.dumps({"conversation_id": "c-bench", "agents": list(PROFILES)})
            await lk.room.create_room(api.CreateRoomRequest(name="bench-agents", metadata=metadata))
            registry = daemon.registry
            assert registry is not None
            await poll_until(lambda: len(registry.joined) == 1, deadline_s=20, what="agents")
            async with (
                caller(server, "bench-agents", "alice", agent_identity=SAM) as alice,
                ears(server, "bench-agents", (AVA, SAM)) as listener,
            ):
                for n in range(rounds):
                    stt.lines.append("I have a mortgage question")
                    await alice.say(tone(0.6), 48_000)
                    await alice.wait_for(
                        functools.partial(_answered, alice.finals, n + 1),
                        deadline_s=20,
                        what="the specialist's answer",
                    )
                    # The specialist's answer has been captioned; wait for its audio to end.
                    await poll_until(
                        lambda: (
                            listener.spans(SAM)
                            and anyio.current_time() - listener.spans(SAM)[-1][1] > 0.3
                        ),
                        deadline_s=20,
                        what="the specialist's answer to end",
                    )
                    ava, sam = listener.spans(AVA), listener.spans(SAM)
                    start = sam[-1][0]
                    end = max(e for _, e in ava if e < start + 1.0)
                    hand_overs.append((start - end) * 1000)
                    overlaps.append(max(0.0, end - start) * 1000)
                total_overlap = listener.overlap_ms()
            daemon.request_stop()
    finally:
        await lk.aclose()
        server.stop()
        dispose_rtc()
    return {
        "rounds": rounds,
        "floor_gap_ms": gap_ms,
        "team_audio_out_queue_ms": queue_ms,
        "hand_over_ms": {
            "p50": round(percentile(hand_overs, 50), 1),
            "p95": round(percentile(hand_overs, 95), 1),
            "min": round(min(hand_overs), 1),
            "max": round(max(hand_overs), 1),
            "all": [round(v, 1) for v in hand_overs],
        },
        "overlap_ms": {
            "total": round(total_overlap, 1),
            "max_per_hand_over": round(max(overlaps), 1),
            "hand_overs_with_overlap": sum(1 for v in overlaps if v > 0),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--gap-ms", type=int, default=150, help="[voice] floor_gap_ms")
    parser.add_argument("--queue-ms", type=int, default=100, help="[voice] team_audio_out_queue_ms")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    result = anyio.run(run, args.rounds, args.gap_ms, args.queue_ms)
    h, o = result["hand_over_ms"], result["overlap_ms"]
    rows = {
        "rounds / floor_gap_ms / team queue ms": f"{args.rounds} / {args.gap_ms} / {args.queue_ms}",
        "hand-over p50 / p95 (ms)": f"{h['p50']} / {h['p95']}",
        "hand-over min / max (ms)": f"{h['min']} / {h['max']}",
        "overlap total / worst (ms)": f"{o['total']} / {o['max_per_hand_over']}",
    }
    for label, value in rows.items():
        print(f"{label:<40}{value:>16}")
    if args.json:
        write_result(args.json, result)


if __name__ == "__main__":
    main()
