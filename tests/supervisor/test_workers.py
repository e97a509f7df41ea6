"""Room workers: placement, a worker killed with SIGKILL, a wedged worker killed by the
heartbeat, drain across workers, metrics."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.abc import TaskGroup
from livekit import api

from actors.persistence import EmbeddedStore
from supervisor import Daemon, parse_config
from supervisor.host import (
    CancelRoom,
    Message,
    Ping,
    ProtocolError,
    Reload,
    RoomEnded,
    StartRoom,
    decode,
    encode,
)
from supervisor.workers import Worker, WorkerPool
from tests.conftest import daemon_config
from tests.e2e.conftest import tone
from tests.harness.caller import caller
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.anyio]


def test_protocol_round_trip_and_refusals() -> None:
    for message in (
        StartRoom("r1", "ws://x", "secret-token", 2),
        CancelRoom("r1", "lease lost"),
        RoomEnded("r1", "crashed", "ActorCrashed"),
    ):
        assert decode(encode(message)) == message
    assert b"\n" == encode(Ping(1))[-1:]
    for bad in (
        b"nope",
        b'{"v": 99, "type": "ping", "seq": 1}',
        b'{"v": 1, "type": "fly"}',
        b'{"v": 2, "type": "ping"}',
        b'{"v": 2, "type": "room_ended", "room": "r", "kind": "exploded"}',
    ):
        with pytest.raises(ProtocolError):
            decode(bad)


@pytest.fixture
async def daemon_with_workers(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> AsyncIterator[Daemon]:
    config = daemon_config(
        livekit_server,
        webhook_port,
        tmp_path / "data",
        supervisor={
            "workers": 2,
            "rooms_per_worker": 10,
            "worker_heartbeat_s": 0.5,
            "restart_backoff_initial_s": 0.1,
        },
        voice={"enabled": True, "providers_factory": "tests.fakes.instant:providers"},
        llm={"greeting": ""},
    )
    daemon = Daemon(config)
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        yield daemon
        daemon.request_stop()


def pool_of(daemon: Daemon) -> WorkerPool:
    assert daemon.pool is not None
    return daemon.pool


async def create_rooms(lkapi: api.LiveKitAPI, names: list[str]) -> None:
    for name in names:
        await lkapi.room.create_room(
            api.CreateRoomRequest(name=name, metadata=json.dumps({"conversation_id": f"c-{name}"}))
        )


@pytest.mark.e2e
async def test_rooms_spread_over_workers_and_answer_from_there(
    daemon_with_workers: Daemon, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    daemon, pool = daemon_with_workers, pool_of(daemon_with_workers)
    names = [f"w-place-{i}" for i in range(4)]
    await create_rooms(lkapi, names)
    registry = daemon.registry
    assert registry is not None
    await poll_until(lambda: registry.joined == set(names), deadline_s=20, what="4 rooms")
    assert sorted(len(w.rooms) for w in pool.workers) == [2, 2]
    pids = {w.pid for w in pool.workers}
    assert len(pids) == 2 and os.getpid() not in pids
    # A turn answered by a worker's voice pipeline (zero-latency fakes).
    async with caller(livekit_server, "w-place-0", "una") as una:
        await una.say(tone(0.5), 48_000)
        await una.wait_for(
            lambda: "You said: hello." in una.finals("voice-agent"),
            deadline_s=15,
            what="answer from a worker",
        )
    # Worker metrics reach the supervisor's /metrics (with the next heartbeat), by worker.
    url = f"http://127.0.0.1:{daemon.config.server.port}/metrics"
    wanted = 'voice_supervisor_replies_total{outcome="complete",worker="'

    async def scraped() -> bool:
        async with httpx.AsyncClient() as client:
            return wanted in (await client.get(url)).text

    await poll_until(scraped, deadline_s=10, what="worker metrics in /metrics")


@pytest.mark.e2e
@pytest.mark.faults
async def test_a_killed_worker_is_restarted_and_its_rooms_move_without_touching_others(
    daemon_with_workers: Daemon, lkapi: api.LiveKitAPI
) -> None:
    daemon, pool = daemon_with_workers, pool_of(daemon_with_workers)
    names = [f"w-kill-{i}" for i in range(4)]
    await create_rooms(lkapi, names)
    registry = daemon.registry
    assert registry is not None
    await poll_until(lambda: registry.joined == set(names), deadline_s=20, what="4 rooms")
    victim, survivor = pool.workers
    victim_rooms, survivor_rooms = {k.room for k in victim.rooms}, dict(survivor.rooms)
    victim_pid = victim.pid
    os.kill(victim_pid, signal.SIGKILL)
    # Its rooms are restarted (with their history) and the worker comes back.
    await poll_until(
        lambda: victim.ready and victim.pid != victim_pid,
        deadline_s=20,
        what="victim worker restarted",
    )
    await poll_until(
        lambda: registry.joined == set(names), deadline_s=30, what="every room joined again"
    )
    # The other worker's rooms never stopped: the same waiters, still running.
    assert all(survivor.rooms.get(room) is waiter for room, waiter in survivor_rooms.items())
    store = EmbeddedStore(daemon.config.persistence.store_path)
    restarted = await poll_until(
        lambda: [e for e in store.events(["agent_joined"]) if e["data"]["attempt"] > 0],
        deadline_s=10,
        what="agent_joined of the restarted rooms",
    )
    assert {e["room"] for e in restarted} == victim_rooms


@pytest.mark.e2e
async def test_drain_reaches_every_worker_and_saves_every_session(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> None:
    config = daemon_config(
        livekit_server,
        webhook_port,
        tmp_path / "data",
        supervisor={"workers": 2, "drain_timeout_s": 10},
    )
    daemon = Daemon(config)
    names = [f"w-drain-{i}" for i in range(4)]
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        await create_rooms(lkapi, names)
        registry = daemon.registry
        assert registry is not None
        await poll_until(lambda: registry.joined == set(names), deadline_s=20, what="rooms")
        workers = pool_of(daemon).workers
        started = anyio.current_time()
        daemon.request_stop()
    took = anyio.current_time() - started
    assert took < config.supervisor.drain_timeout_s
    assert [w.exit_code for w in workers] == [0, 0]
    sessions = EmbeddedStore(config.persistence.store_path).sessions()
    assert sorted(s["room"] for s in sessions) == names
    assert {s["end_reason"] for s in sessions} == {"daemon shutting down"}


@asynccontextmanager
async def one_worker(
    tmp_path: Path, **supervisor: float
) -> AsyncIterator[tuple[TaskGroup, WorkerPool, Worker]]:
    """A pool of one worker process (no voice), ready; the caller shuts the pool down."""
    config = parse_config(
        {
            "supervisor": {"workers": 1, **supervisor},
            "voice": {"enabled": False},
            "persistence": {"data_dir": str(tmp_path / "data")},
        },
        environ={},
    )
    pool = WorkerPool(config)
    async with anyio.create_task_group() as tg:
        await tg.start(pool.run)
        with anyio.fail_after(config.supervisor.worker_init_timeout_s):
            await pool.wait_ready(1)
        (worker,) = pool.workers
        yield tg, pool, worker


async def send_quietly(worker: Worker, message: Message) -> None:
    try:
        await worker.send(message)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass  # the worker was killed: its pipe broke under the waiting send


@pytest.mark.faults
async def test_a_worker_that_stops_reading_its_stdin_is_killed_within_the_heartbeat_timeout(
    tmp_path: Path,
) -> None:
    period = 0.2
    timeout = period * 5  # the pool's five missed pongs
    async with one_worker(tmp_path, worker_heartbeat_s=period) as (tg, pool, worker):
        pid = worker.pid
        # Wedged: it reads nothing more, and a message bigger than the pipe fills it. The send
        # waits for room in the pipe holding the worker's send lock, as a StartRoom or StopRoom
        # to a wedged worker would; a ping queued behind it must not stop the pong deadline.
        os.kill(pid, signal.SIGSTOP)
        wedged_at = anyio.current_time()
        tg.start_soon(send_quietly, worker, Reload({"pad": "x" * (4 << 20)}))
        await poll_until(
            lambda: worker.exit_code is not None, deadline_s=timeout + 10, what="worker killed"
        )
        killed_after = anyio.current_time() - wedged_at
        assert worker.exit_code == -signal.SIGKILL
        # Its last pong came before it was stopped, so the kill is due within the timeout.
        assert killed_after < timeout + 1.0, killed_after
        await poll_until(
            lambda: worker.ready and worker.pid != pid, deadline_s=30, what="worker restarted"
        )
        await pool.shutdown(5.0)


async def test_a_worker_over_its_memory_limit_is_retired_and_started_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Every worker is over 1 MB at once: with no room to wait for, it exits and starts anew.
    limits = {"worker_heartbeat_s": 0.2, "worker_memory_limit_mb": 1}
    async with one_worker(tmp_path, **limits) as (_tg, pool, worker):
        first = worker.pid
        await poll_until(lambda: worker.exit_code == 0, deadline_s=30, what="retired worker exit")
        assert pool.place("a-room") is None or worker.pid != first  # never placed while retiring
        # A new process said it was ready (its pid is set then); it retires too, at its first
        # pong, which is all this limit allows.
        await poll_until(lambda: worker.pid != first, deadline_s=30, what="a fresh worker")
        await pool.shutdown(5.0)
    assert any("worker_memory_limit_mb" in r.getMessage() for r in caplog.records)
