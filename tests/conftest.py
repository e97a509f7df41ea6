"""Shared fixtures: a real livekit-server (session), the daemon under test, API clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from livekit import api

from supervisor import Config, Daemon, parse_config
from tests.failover._redis_server import RedisServer
from tests.harness.livekit_server import LiveKitServer, free_port, start_server
from tests.harness.waits import poll_until

ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # One event loop for the whole session: the LiveKit FFI delivers late native events to the
    # loop a Room was created on, and a closed loop makes its native thread abort the process.
    return "asyncio"


@pytest.fixture(scope="session")
def webhook_port() -> int:
    """The port the daemon under test listens on; the session's server posts webhooks there."""
    return free_port()


@pytest.fixture(scope="session")
def livekit_server(webhook_port: int) -> Iterator[LiveKitServer]:
    server = start_server(ARTIFACTS, [f"http://127.0.0.1:{webhook_port}/webhook"])
    yield server
    server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free port (the failover tests, check-config --connect)."""
    server = RedisServer(ARTIFACTS / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def daemon_config(
    server: LiveKitServer, port: int, data_dir: Path, **sections: dict[str, Any]
) -> Config:
    """A config for a daemon under test; ``sections`` override or add keys per section."""
    data: dict[str, dict[str, Any]] = {
        "livekit": {
            "url": server.ws_url,
            "api_key": server.api_key,
            "api_secret": server.api_secret,
        },
        "server": {"host": "127.0.0.1", "port": port},
        "persistence": {"data_dir": str(data_dir), "flush_interval_ms": 5},
        # Rooms run in the test process (workers = 0) unless a test asks for workers.
        "supervisor": {"reconcile_interval_s": 30.0, "drain_timeout_s": 5.0, "workers": 0},
        "agent": {"connect_timeout_s": 10.0},
        # Voice tests switch it on and bring their providers; room tests only track rooms.
        "voice": {"enabled": False},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data, environ={})


@pytest.fixture
async def lkapi(livekit_server: LiveKitServer) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(
        livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret
    )
    try:
        # The server is shared by the session: start from no rooms, not from what an
        # earlier test (or a webhook LiveKit delivered late, which makes a daemon join and
        # so re-create a room) left behind.
        await delete_all_rooms(client)
        yield client
    finally:
        await delete_all_rooms(client)
        await client.aclose()


async def delete_all_rooms(client: api.LiveKitAPI) -> None:
    """Delete every room on the server and wait until a listing comes back empty."""

    async def none_left() -> bool:
        rooms = (await client.room.list_rooms(api.ListRoomsRequest())).rooms
        for room in rooms:
            await client.room.delete_room(api.DeleteRoomRequest(room=room.name))
        return not rooms

    await poll_until(none_left, deadline_s=10, what="no rooms left on the server")


@pytest.fixture
async def daemon(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> AsyncIterator[Daemon]:
    """The daemon, in this process, on the port the server sends webhooks to (started
    after ``lkapi`` cleared the server, stopped before it clears it again)."""
    config = daemon_config(livekit_server, webhook_port, tmp_path / "data")
    daemon = Daemon(config)
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        yield daemon
        daemon.request_stop()


def room_metadata(**fields: str) -> str:
    return json.dumps(fields)
