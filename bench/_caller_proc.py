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
    args = parser.parse_args()
    server = Access(args.url, args.key, args.secret)
    async with caller(server, args.room, "caller") as bot:
        for i in range(args.turns):
            before = len(bot.finals("voice-agent"))
            await bot.say(tone(0.25), 48_000)
            await bot.wait_for(
                lambda b=before: len(bot.finals("voice-agent")) > b,
                deadline_s=15,
                what=f"answer {i}",
            )
            print(f"answer {i}", flush=True)
    dispose_rtc()


if __name__ == "__main__":
    anyio.run(main, backend="asyncio")
