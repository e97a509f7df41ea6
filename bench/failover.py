"""Several daemons through Redis: how evenly rooms spread, and how fast a dead daemon's rooms
are taken over.

Starts a redis-server, a livekit-server posting webhooks to two daemons (subprocesses), a
reference backend, and the daemons. Creates N rooms, each with a person in it (the server
closes a room its last non-agent participant left), and counts the leases each daemon wins
(ownership balance). Then, ``--kills`` times: ``kill -9`` the daemon holding the rooms, time
each of its rooms until another daemon's agent is in it (takeover), and restart the killed
daemon. Prints a table and writes JSON.

    python bench/failover.py --rooms 20 --kills 10 --json bench/results/failover.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from livekit import api

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._results import write_result  # noqa: E402
from supervisor.coordination import RedisSettings, RedisStore  # noqa: E402
from tests.failover._fleet import DaemonProc, Fleet, FleetSettings, build_fleet  # noqa: E402
from tests.failover._redis_server import RedisServer  # noqa: E402
from tests.harness.livekit_server import LiveKitServer, start_server  # noqa: E402
from tests.harness.participants import joined  # noqa: E402

_POLL_S = 0.05


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def agents(lk: api.LiveKitAPI, room: str) -> list[str]:
    return [identity for identity, _sid in await agent_sids(lk, room)]


async def agent_sids(lk: api.LiveKitAPI, room: str) -> list[tuple[str, str]]:
    resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return [(p.identity, p.sid) for p in resp.participants if p.identity.startswith("agent-")]


async def holders(store: RedisStore, rooms: list[str]) -> dict[str, str | None]:
    return {room: await store.lease_holder(room) for room in rooms}


async def wait_owned(
    lk: api.LiveKitAPI, store: RedisStore, rooms: list[str], deadline_s: float
) -> dict[str, str]:
    """Wait until every room has a lease holder whose agent is in it; return room → holder.

    (A killed daemon's agent may linger in a room until the server notices it is gone.)
    """
    end = time.monotonic() + deadline_s
    owners: dict[str, str | None] = {}
    while time.monotonic() < end:
        owners = await holders(store, rooms)
        if all(owners.values()):
            present = [f"agent-{owners[room]}" in await agents(lk, room) for room in rooms]
            if all(present):
                return {room: str(owner) for room, owner in owners.items()}
        await anyio.sleep(_POLL_S)
    raise TimeoutError(f"rooms not all owned after {deadline_s}s: {owners}")


async def takeover(
    lk: api.LiveKitAPI, rooms: list[str], dead: str, before: set[str], deadline_s: float
) -> dict[str, float]:
    """Seconds from now until each room has a new agent (not ``dead``, not a participant sid in
    ``before``: an agent killed earlier may linger until the server notices)."""
    start = time.monotonic()
    done: dict[str, float] = {}
    while len(done) < len(rooms):
        if time.monotonic() - start > deadline_s:
            missing = sorted(set(rooms) - set(done))
            raise TimeoutError(f"no takeover within {deadline_s}s for {missing}")
        for room in rooms:
            if room not in done and any(
                identity != dead and sid not in before
                for identity, sid in await agent_sids(lk, room)
            ):
                done[room] = time.monotonic() - start
        await anyio.sleep(_POLL_S)
    return done


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = FleetSettings(
        lease_ttl_s=args.lease_ttl,
        reconcile_interval_s=args.reconcile,
        max_rooms_per_user=None,
        turns_per_minute_per_user=None,
    )
    work = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    redis = RedisServer(work / "redis")
    redis.start()
    servers: list[LiveKitServer] = []

    def server_factory(urls: list[str]) -> LiveKitServer:
        servers.append(start_server(work, urls))
        return servers[-1]

    fleet: Fleet | None = None
    store = RedisStore(RedisSettings(url=redis.url, node_id="bench"))
    try:
        fleet = build_fleet(work / "run", server_factory, redis, ["a", "b"], settings)
        lk = api.LiveKitAPI(fleet.server.http_url, fleet.server.api_key, fleet.server.api_secret)
        people = AsyncExitStack()
        try:
            rooms = [f"bench-fo-{i}" for i in range(args.rooms)]
            for room in rooms:
                meta = json.dumps({"conversation_id": f"c-{room}"})
                await lk.room.create_room(api.CreateRoomRequest(name=room, metadata=meta))
                await people.enter_async_context(joined(fleet.server, room, f"person-{room}"))
            owners = await wait_owned(lk, store, rooms, 60)
            balance = {name: sum(1 for o in owners.values() if o == name) for name in fleet.daemons}
            per_room: list[float] = []
            per_kill: list[float] = []
            for _ in range(args.kills):
                owners = await wait_owned(lk, store, rooms, 60)
                loads = {n: sum(1 for o in owners.values() if o == n) for n in fleet.daemons}
                victim: DaemonProc = fleet.daemons[max(loads, key=lambda n: loads[n])]
                theirs = [room for room, owner in owners.items() if owner == victim.name]
                before = {sid for room in theirs for _, sid in await agent_sids(lk, room)}
                victim.kill9()
                times = await takeover(
                    lk, theirs, victim.identity, before, args.lease_ttl + args.reconcile + 30
                )
                per_room.extend(times.values())
                per_kill.append(max(times.values()))
                print(  # progress, on stderr
                    f"kill {len(per_kill)}: {len(theirs)} rooms of daemon {victim.name} taken"
                    f" over in {max(times.values()):.2f}s",
                    file=sys.stderr,
                )
                victim.start()
                victim.wait_ready()
        finally:
            await people.aclose()
            for listed in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms:
                await lk.room.delete_room(api.DeleteRoomRequest(room=listed.name))
            await lk.aclose()
    finally:
        await store.aclose()
        if fleet is not None:
            fleet.stop()
        for server in servers:
            server.stop()
        redis.stop()
    return {
        "rooms": args.rooms,
        "daemons": 2,
        "kills": args.kills,
        "lease_ttl_s": args.lease_ttl,
        "reconcile_interval_s": args.reconcile,
        "balance": balance,
        "takeover_s": {
            "per_room": {
                "p50": round(percentile(per_room, 50), 3),
                "p95": round(percentile(per_room, 95), 3),
                "max": round(max(per_room), 3),
                "mean": round(statistics.mean(per_room), 3),
                "samples": len(per_room),
            },
            "last_room_of_each_kill": {
                "p50": round(percentile(per_kill, 50), 3),
                "max": round(max(per_kill), 3),
                "values": [round(v, 3) for v in per_kill],
            },
        },
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--lease-ttl", type=float, default=3.0, help="[redis] lease_ttl_s")
    parser.add_argument(
        "--reconcile", type=float, default=1.0, help="[supervisor] reconcile_interval_s"
    )
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args()
    result = anyio.run(run, args, backend="asyncio")
    rooms, kill = result["takeover_s"]["per_room"], result["takeover_s"]["last_room_of_each_kill"]
    print(f"{'metric':<40}{'value':>12}")
    print(f"{'rooms / daemons / kills':<40}{f'{args.rooms}/2/{args.kills}':>12}")
    print(f"{'lease TTL + reconcile interval (s)':<40}{args.lease_ttl + args.reconcile:>12.1f}")
    for name, count in sorted(result["balance"].items()):
        print(f"{'rooms owned by daemon ' + name:<40}{count:>12}")
    for key in ("p50", "p95", "max"):
        print(f"{'takeover per room ' + key + ' (s)':<40}{rooms[key]:>12.3f}")
    for key in ("p50", "max"):
        print(f"{'takeover of all rooms, per kill ' + key + ' (s)':<40}{kill[key]:>12.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_result(args.json, result)


if __name__ == "__main__":
    main()
