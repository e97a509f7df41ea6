"""What keeps two agents from answering in one room, against a real livekit-server and a real
Redis: a lost lease cancels the room's actor at once, in a room-worker process as in the
supervisor's own; and LiveKit itself evicts the first of two participants with one identity
(``DUPLICATE_IDENTITY``), the last fence when two daemons both believe they hold a lease."""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import redis.asyncio as aioredis
from livekit import api, rtc
from prometheus_client import REGISTRY

from actors.persistence import EmbeddedStore
from supervisor import Config, Daemon
from supervisor.coordination import RedisStore
from supervisor.host import CancelRoom, Message, StopRoom
from supervisor.workers import Worker
from tests.conftest import daemon_config
from tests.failover._redis_server import RedisServer
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.failover, pytest.mark.e2e, pytest.mark.anyio]

LEASE_TTL_S = 1.5
AGENT = "voice-agent"


async def agents_in(lkapi: api.LiveKitAPI, room: str) -> list[api.ParticipantInfo]:
    resp = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
    return [p for p in resp.participants if p.identity == AGENT]


def sessions_of(config: Config, room: str) -> list[dict[str, object]]:
    store = EmbeddedStore(config.persistence.store_path)
    try:
        return [s for s in store.sessions() if s["room"] == room]
    finally:
        store.close()


@pytest.fixture
async def sent_to_workers(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Message]]:
    """Every message the supervisor sends to a room worker, in order."""
    sent: list[Message] = []
    send = Worker.send

    async def recording(self: Worker, message: Message) -> None:
        sent.append(message)
        await send(self, message)

    monkeypatch.setattr(Worker, "send", recording)
    yield sent


@pytest.mark.parametrize("workers", [1, 0], ids=["worker", "in-process"])
async def test_a_lost_lease_cancels_the_rooms_actor_at_once(
    livekit_server: LiveKitServer,
    lkapi: api.LiveKitAPI,
    redis_server: RedisServer,
    webhook_port: int,
    tmp_path: Path,
    sent_to_workers: list[Message],
    workers: int,
) -> None:
    config = daemon_config(
        livekit_server,
        webhook_port,
        tmp_path / "data",
        # A fresh Redis holds new leases off for one TTL: the next reconcile claims the room.
        supervisor={"workers": workers, "reconcile_interval_s": 0.5},
        redis={
            "url": redis_server.url,
            "node_id": "me",
            "lease_ttl_s": LEASE_TTL_S,
            "timeout_s": 0.2,
            "key_prefix": "fence:",
        },
    )
    room = f"fence-lease-{workers}"
    daemon = Daemon(config)
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        registry = daemon.registry
        assert registry is not None
        await lkapi.room.create_room(
            api.CreateRoomRequest(name=room, metadata=json.dumps({"conversation_id": "c-fence"}))
        )
        await poll_until(lambda: room in registry.joined, deadline_s=30, what="room joined")
        assert len(await agents_in(lkapi, room)) == 1
        # Another daemon takes the room's lease (as after this one was paused past its TTL).
        thief = aioredis.Redis.from_url(redis_server.url)
        try:
            key = RedisStore(config.redis).lease_key(room)
            await thief.set(key, "another-daemon", px=60_000)
            taken_at = anyio.current_time()
            await poll_until(
                lambda: room not in registry.rooms, deadline_s=10, what="actor cancelled"
            )
            ended_s = anyio.current_time() - taken_at

            async def agent_gone() -> bool:
                return not await agents_in(lkapi, room)

            await poll_until(agent_gone, deadline_s=10, what="agent left the room")
            left_s = anyio.current_time() - taken_at
            # Noticed at the next renewal (a third of the TTL), then cancelled, not drained.
            renewal_s = LEASE_TTL_S / 3
            assert ended_s < renewal_s + config.agent.close_timeout_s, ended_s
            assert left_s < renewal_s + config.agent.close_timeout_s, left_s
            # One path in both modes: the host in this process gets the same CancelRoom.
            to_room = [m for m in sent_to_workers if getattr(m, "room", None) == room]
            assert any(isinstance(m, CancelRoom) for m in to_room), to_room
            assert not any(isinstance(m, StopRoom) for m in to_room), to_room
            # Not restarted: later reconciles find the lease held elsewhere. (Each one may
            # leave a slot trying to claim the lease as it counts itself: joined, not rooms.)
            runs = reconcile_runs()
            await poll_until(lambda: reconcile_runs() >= runs + 2, deadline_s=10, what="2 passes")
            assert room not in registry.joined and not await agents_in(lkapi, room)
            assert await thief.get(key) == b"another-daemon"
        finally:
            await thief.aclose()
        # The cancelled actor still saved its session before it left.
        await poll_until(lambda: sessions_of(config, room), deadline_s=10, what="the session saved")
        daemon.request_stop()


def reconcile_runs() -> float:
    value = REGISTRY.get_sample_value("voice_supervisor_reconcile_total", {"result": "ok"})
    return 0.0 if value is None else value


async def test_livekit_evicts_the_first_of_two_agents_with_the_same_identity(
    daemon: Daemon, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    room = "fence-identity"
    await lkapi.room.create_room(
        api.CreateRoomRequest(name=room, metadata=json.dumps({"conversation_id": "c-ident"}))
    )
    registry = daemon.registry
    assert registry is not None
    await poll_until(lambda: room in registry.joined, deadline_s=30, what="room joined")
    (first,) = await agents_in(lkapi, room)
    # A second daemon's agent: the same identity and grants, as every daemon of a fleet has.
    token = (
        api.AccessToken(livekit_server.api_key, livekit_server.api_secret)
        .with_identity(daemon.config.agent.identity)
        .with_kind("agent")
        .with_grants(api.VideoGrants(room_join=True, room=room, agent=True))
        .with_ttl(datetime.timedelta(minutes=5))
        .to_jwt()
    )
    second = rtc.Room()
    second_evicted = anyio.Event()
    second.on("disconnected", lambda _reason: second_evicted.set())
    await second.connect(livekit_server.ws_url, token)
    try:
        # The daemon's actor was disconnected by the server, with the reason, and ended.
        await poll_until(lambda: room not in registry.rooms, deadline_s=10, what="actor ended")
        sessions = await poll_until(
            lambda: sessions_of(daemon.config, room), deadline_s=10, what="the session saved"
        )
        assert [s["end_reason"] for s in sessions] == ["duplicate_identity"]
        (now_in_room,) = await agents_in(lkapi, room)
        assert now_in_room.sid != first.sid
        assert now_in_room.sid == second.local_participant.sid
        assert not second_evicted.is_set()
    finally:
        await second.disconnect()
