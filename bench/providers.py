"""First-output latency of each vendor provider through its official SDK and its local fake.

What is measured is our side plus the SDK and a loopback socket (the fakes answer at once), so
it shows what the provider code costs and whether a change made it slower, not what the vendor
takes. Per provider, ``--runs`` requests, median and p90 in milliseconds:

- deepgram: ``open`` (handshake to a usable stream, STT's first output for the fallback chain)
  and ``final`` (from the last audio sent of an utterance to its FINAL transcript);
- openai: ``first_token`` (request to first text delta, one client reused);
- cartesia: ``first_chunk_cold`` (a new provider: handshake + first chunk), ``first_chunk``
  (a pooled socket, one context per sentence, as the provider does) and
  ``continuation_first_chunk`` (the same second sentence pushed into one context per turn,
  ``continue: true``, straight through the SDK: the alternative the issue asked to measure).

    python bench/providers.py --runs 30 --json bench/results/providers.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from actors.providers import ChatMessage, SpeechEventKind  # noqa: E402
from actors.providers.cartesia_tts import CartesiaTts  # noqa: E402
from actors.providers.deepgram import DeepgramStt  # noqa: E402
from actors.providers.openai_llm import OpenAiLlm  # noqa: E402
from bench._results import write_result  # noqa: E402
from tests.fakes.cartesia_fake import CartesiaFake  # noqa: E402
from tests.fakes.deepgram_fake import DeepgramFake  # noqa: E402
from tests.fakes.openai_fake import OpenAiFake  # noqa: E402

RATE = 16_000
FIRST = "Sure, I can help with that."
SECOND = "What time would you like the table?"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"median_ms": round(percentile(ms, 50), 2), "p90_ms": round(percentile(ms, 90), 2)}


def tone(seconds: float) -> bytes:
    import numpy as np

    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()


async def repeat(runs: int, once: Callable[[], Awaitable[Any]]) -> list[Any]:
    await once()  # warm-up: imports, first connections
    return [await once() for _ in range(runs)]


async def deepgram(runs: int) -> dict[str, Any]:
    async with DeepgramFake().serve() as fake:
        stt = DeepgramStt(
            api_key=fake.api_key, base_url=fake.url, endpointing_ms=300, turn_detection="silence"
        )
        audio = tone(0.6) + bytes(int(0.5 * RATE) * 2)

        async def once() -> tuple[float, float]:
            began = time.perf_counter()
            async with stt.stream() as stream:
                opened = time.perf_counter() - began
                for offset in range(0, len(audio), 640):
                    await stream.send(audio[offset : offset + 640])
                sent = time.perf_counter()
                final = 0.0
                async for event in stream.events():
                    if event.kind is SpeechEventKind.FINAL:
                        final = time.perf_counter() - sent
                        await stream.end_input()
            return opened, final

        results = await repeat(runs, once)
    return {"open": summary([r[0] for r in results]), "final": summary([r[1] for r in results])}


async def openai(runs: int) -> dict[str, Any]:
    async with OpenAiFake().serve() as fake:
        llm = OpenAiLlm(api_key=fake.api_key, model="fake", base_url=fake.base_url)
        history = [ChatMessage("user", "hello", speaker="alice")]

        async def once() -> float:
            began = time.perf_counter()
            replies = llm.complete(history)
            try:
                async for delta in replies:
                    if delta:
                        return time.perf_counter() - began
            finally:
                await replies.aclose()
            raise RuntimeError("no token")

        try:
            results = await repeat(runs, once)
        finally:
            await llm.aclose()
    return {"first_token": summary(results)}


async def cartesia(runs: int) -> dict[str, Any]:
    async with CartesiaFake().serve() as fake:

        def provider() -> CartesiaTts:
            return CartesiaTts(api_key=fake.api_key, voice="v", base_url=fake.url)

        async def first_chunk(tts: CartesiaTts, text: str) -> float:
            began = time.perf_counter()
            audio = tts.synthesize(text)
            try:
                await anext(audio)
                took = time.perf_counter() - began
                async for _ in audio:
                    pass
            finally:
                await audio.aclose()
            return took

        async def cold() -> float:
            tts = provider()
            try:
                return await first_chunk(tts, SECOND)
            finally:
                await tts.aclose()

        pooled_tts = provider()

        async def pooled() -> float:
            await first_chunk(pooled_tts, FIRST)
            return await first_chunk(pooled_tts, SECOND)

        try:
            cold_s = await repeat(runs, cold)
            pooled_s = await repeat(runs, pooled)
        finally:
            await pooled_tts.aclose()
        continuation_s = await _continuations(fake, runs)
    return {
        "first_chunk_cold": summary(cold_s),
        "first_chunk": summary(pooled_s),
        "continuation_first_chunk": summary(continuation_s),
    }


async def _continuations(fake: CartesiaFake, runs: int) -> list[float]:
    """The second sentence's first chunk when it continues the turn's context."""
    from cartesia import AsyncCartesia

    client = AsyncCartesia(
        api_key=fake.api_key, base_url=fake.url, websocket_base_url=fake.url.replace("http", "ws")
    )
    first_chunks = len(fake._audio(FIRST, 24_000))
    fmt: Any = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24_000}
    connection = await client.tts.websocket_connect().enter()
    try:

        async def once() -> float:
            ctx = connection.context(model_id="sonic-3", voice={"id": "v"}, output_format=fmt)
            await ctx.push(FIRST)
            events = ctx.receive()
            seen = 0
            while seen < first_chunks:
                if (await anext(events)).type == "chunk":
                    seen += 1
            began = time.perf_counter()
            await ctx.push(SECOND)
            while (await anext(events)).type != "chunk":
                pass
            took = time.perf_counter() - began
            await ctx.no_more_inputs()
            async for _ in events:
                pass
            return took

        return await repeat(runs, once)
    finally:
        await connection.close()
        await client.close()


async def main(runs: int) -> dict[str, Any]:
    return {
        "runs": runs,
        "deepgram": await deepgram(runs),
        "openai": await openai(runs),
        "cartesia": await cartesia(runs),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    results = anyio.run(main, args.runs, backend="asyncio")
    text = json.dumps(results, indent=2)
    print(text)
    if args.json is not None:
        write_result(args.json, results)
