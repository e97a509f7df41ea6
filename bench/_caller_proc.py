"""A caller bot in a process of its own (so the daemon's measurements exclude it).

Speaks ``--turns`` tone bursts into ``--room``, each after the agent's previous answer caption,
and prints one line per answer. Used by bench/latency.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors.room import dispose_rtc  # noqa: E402
from bench.latency import tone  # noqa: E402
from tests.harness.caller import caller  # noqa: E402
from tests.harness.participants import Access  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--turns", type=int, required=True)
    parser.add_argument(
        "--voice-to-voice",
        action="store_true",
        help="speak hibari speech and time the agent's voice",
    )
    args = parser.parse_args()
    if args.voice_to_voice:
        import hibari
        import numpy as np

        audio = hibari.Hibari()("could you tell me what time the pharmacy opens tomorrow")
        speech = ((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes(), 24_000)
    else:
        speech = (tone(0.25), 48_000)
    server = Access(args.url, args.key, args.secret)
    async with caller(server, args.room, "caller") as bot:
        for i in range(args.turns):
            before = len(bot.finals("voice-agent"))
            await bot.say(*speech)
            await bot.wait_for(
                lambda b=before: len(bot.finals("voice-agent")) > b,
                deadline_s=15,
                what=f"answer {i}",
            )
            if args.voice_to_voice:
                await bot.wait_for(
                    lambda: bot.voice_at > bot.spoke_at, deadline_s=15, what="agent voice"
                )
                print(f"v2v_ms {1000 * (bot.voice_at - bot.spoke_at):.1f}", flush=True)
            print(f"answer {i}", flush=True)
    dispose_rtc()


if __name__ == "__main__":
    anyio.run(main, backend="asyncio")
