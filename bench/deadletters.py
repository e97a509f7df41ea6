"""Dead letters as they happen: one poison event among good ones, an outage, ``Retry-After: 0``.

The real PersistenceActor, with the shipped ``[persistence]`` defaults (``max_attempts``,
``max_failing_s``, ``retry_initial_s``, ``retry_max_s``), ships to the reference backend over
loopback HTTP, with faults injected in front of it (``tests/fakes/backend.py``). Real time.

- poison: ``--events`` events of several conversations, one of which the backend answers 500
  for every time. How many attempts it got, how long until it was dead-lettered, and whether
  every other event arrived (once, in order per conversation). Once per ``--seeds``.
- outage: the backend is down for ``--outage-s`` while events wait, with ``max_failing_s``
  shorter than the outage: what was tried, what was dead-lettered (nothing should be), lost.
- retry-after-0: the backend answers 429 with ``Retry-After: 0`` ``--refusals`` times: the
  shortest gap between two attempts (floored at ``retry_initial_s``, never a tight loop).

    python bench/deadletters.py --json bench/results/deadletters.json
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from actors import Event, EventType  # noqa: E402
from actors.persistence import EmbeddedStore, PersistenceActor, PersistenceSettings  # noqa: E402
from bench._results import write_result  # noqa: E402
from tests.fakes.backend import BATCH_PATH, Fault, FaultyBackend, running_backend  # noqa: E402

CONVERSATIONS = 10


def event(index: int) -> Event:
    conversation = f"conv-{index % CONVERSATIONS}"
    data = {"role": "user", "content": f"turn {index}", "speaker": "alice"}
    return Event(EventType.TURN, "room-1", conversation, data, 1.7e9 + index, f"EV_{index:08d}")


def settings(data_dir: Path, backend: FaultyBackend, **overrides: Any) -> PersistenceSettings:
    values: dict[str, Any] = {"data_dir": data_dir, "backend_url": backend.url, **overrides}
    return PersistenceSettings.model_validate(values)


def stored(backend: FaultyBackend) -> dict[str, list[str]]:
    """Event ids the backend stored, per conversation, in the order it stored them."""
    by_conversation: dict[str, list[str]] = {}
    for row in backend.store.events():
        by_conversation.setdefault(row["conversation_id"], []).append(row["id"])
    return by_conversation


@contextmanager
def quiet() -> Iterator[None]:
    # The actor logs every retry and the dead letter itself; the figures are what matter here.
    logger = logging.getLogger("actors.persistence")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def poison_run(seed: int, events: int) -> dict[str, Any]:
    rng = random.Random(seed)
    poison_index = rng.randrange(events)
    with tempfile.TemporaryDirectory() as tmp:
        async with running_backend(Path(tmp) / "backend.sqlite3") as backend:
            poison_id = event(poison_index).id
            backend.fail_ids[poison_id] = Fault(500)
            local = EmbeddedStore(Path(tmp) / "data" / "store.sqlite3")
            actor = PersistenceActor(settings(Path(tmp) / "data", backend), local)
            async with anyio.create_task_group() as tg:
                await tg.start(actor.run)
                started = time.monotonic()
                for i in range(events):
                    actor.emit(event(i))
                with anyio.fail_after(300):
                    await actor.wait_empty()
                took = time.monotonic() - started
                actor.close()
            arrived = stored(backend)
            ids = [i for per in arrived.values() for i in per]
            in_order = all(per == sorted(per) for per in arrived.values())
            return {
                "poison_attempts": backend.received[poison_id],
                "dead_lettered_after_s": round(took, 2),
                "dead_lettered": actor.dead_lettered,
                "others_arrived": len(set(ids)),
                # Sent more than once is allowed (the backend dedupes by id); stored twice is not.
                "stored_twice": len(ids) - len(set(ids)),
                "in_order": in_order,
                "requests": len(backend.batch_requests()),
            }


async def outage_run(events: int, outage_s: float, max_failing_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_backend(Path(tmp) / "backend.sqlite3") as backend:
            await backend.down()
            actor = PersistenceActor(
                settings(Path(tmp) / "data", backend, max_failing_s=max_failing_s),
                EmbeddedStore(Path(tmp) / "data" / "store.sqlite3"),
            )
            async with anyio.create_task_group() as tg:
                await tg.start(actor.run)
                for i in range(events):
                    actor.emit(event(i))
                await actor.flush()
                await anyio.sleep(outage_s)  # the outage under test: real time passes
                retries_during = actor.retries
                await backend.up()
                with anyio.fail_after(300):
                    await actor.wait_empty()
                actor.close()
            ids = {i for per in stored(backend).values() for i in per}
            return {
                "outage_s": outage_s,
                "max_failing_s": max_failing_s,
                "attempts_during_outage": retries_during,
                "dead_lettered": actor.dead_lettered,
                "lost": events - len(ids),
            }


async def retry_after_zero_run(refusals: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_backend(Path(tmp) / "backend.sqlite3") as backend:
            backend.fail(*(Fault(429, retry_after="0") for _ in range(refusals)))
            conf = settings(Path(tmp) / "data", backend)
            actor = PersistenceActor(conf, EmbeddedStore(Path(tmp) / "data" / "store.sqlite3"))
            async with anyio.create_task_group() as tg:
                await tg.start(actor.run)
                actor.emit(event(0))
                with anyio.fail_after(300):
                    await actor.wait_empty()
                actor.close()
            times = [c.at for c in backend.captured if c.path == BATCH_PATH]
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
            return {
                "refusals": refusals,
                "requests": len(times),
                "shortest_gap_s": round(min(gaps), 3),
                "retry_initial_s": conf.retry_initial_s,
                "dead_lettered": actor.dead_lettered,
            }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500, help="events around the poison one")
    parser.add_argument("--seeds", type=int, default=5, help="poison runs")
    parser.add_argument("--outage-s", type=float, default=30.0)
    parser.add_argument("--outage-max-failing-s", type=float, default=5.0)
    parser.add_argument("--refusals", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args()
    with quiet():
        poison = [await poison_run(seed, args.events) for seed in range(args.seeds)]
        outage = await outage_run(args.events, args.outage_s, args.outage_max_failing_s)
        retry = await retry_after_zero_run(args.refusals)
    delays = [run["dead_lettered_after_s"] for run in poison]
    result = {
        "events": args.events,
        "poison_runs": poison,
        "poison_dead_lettered_after_s_mean": round(statistics.mean(delays), 2),
        "poison_dead_lettered_after_s_max": max(delays),
        "poison_attempts_mean": statistics.mean(run["poison_attempts"] for run in poison),
        "others_lost": sum(args.events - 1 - run["others_arrived"] for run in poison),
        "outage": outage,
        "retry_after_zero": retry,
    }
    print("| scenario | figure | value |\n|---|---|---|")
    print(
        f"| poison ({args.seeds} runs) | dead-lettered after, mean / max | "
        f"{result['poison_dead_lettered_after_s_mean']} / {max(delays)} s |"
    )
    print(f"| | attempts of the poison event, mean | {result['poison_attempts_mean']} |")
    print(
        f"| | other events lost / duplicated | {result['others_lost']} / "
        f"{sum(run['stored_twice'] for run in poison)} |"
    )
    print(
        f"| outage {args.outage_s:g} s (max_failing_s {args.outage_max_failing_s:g}) | "
        f"attempts / dead letters / lost | {outage['attempts_during_outage']} / "
        f"{outage['dead_lettered']} / {outage['lost']} |"
    )
    print(
        f"| Retry-After: 0 × {args.refusals} | shortest gap between attempts | "
        f"{retry['shortest_gap_s']} s (retry_initial_s {retry['retry_initial_s']}) |"
    )
    if args.json:
        write_result(args.json, result)


if __name__ == "__main__":
    anyio.run(main)
