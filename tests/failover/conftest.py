"""Fixtures of the failover tests: a real redis-server and a Redis store on it; and for a
module that sets ``FLEET_SETTINGS``, a fleet of three daemons (module-scoped), a room service
client that leaves no rooms behind, and a lease store on the fleet's Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from livekit import api

from supervisor.coordination import RedisSettings, RedisStore
from tests.conftest import delete_all_rooms
from tests.failover._fleet import Fleet, FleetSettings, build_fleet
from tests.failover._redis_server import RedisServer
from tests.harness.livekit_server import LiveKitServer, start_server


def fast_settings(url: str, node_id: str, **overrides: object) -> RedisSettings:
    """Short leases, so that tests of expiry take about a second."""
    values: dict[str, object] = {
        "url": url,
        "node_id": node_id,
        "lease_ttl_s": 0.9,
        "timeout_s": 0.2,
        "key_prefix": "t:",
    }
    values.update(overrides)
    return RedisSettings.model_validate(values)


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    s = RedisStore(fast_settings(redis_server.url, "probe"))
    try:
        yield s
    finally:
        await s.aclose()


@pytest.fixture(scope="module")
def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    """Daemons a, b and c with the module's ``FLEET_SETTINGS``, on one livekit-server, one
    Redis and one reference backend."""
    settings: FleetSettings = request.module.FLEET_SETTINGS
    work = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    redis = RedisServer(work / "redis")
    redis.start()
    servers: list[LiveKitServer] = []

    def server_factory(urls: list[str]) -> LiveKitServer:
        servers.append(start_server(work, urls))
        return servers[-1]

    try:
        fleet = build_fleet(work / "run", server_factory, redis, ["a", "b", "c"], settings)
    except BaseException:
        for server in servers:
            server.stop()
        redis.stop()
        raise
    try:
        yield fleet
    finally:
        fleet.stop()
        fleet.server.stop()
        redis.stop()


@pytest.fixture
async def lk(fleet: Fleet) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(fleet.server.http_url, fleet.server.api_key, fleet.server.api_secret)
    try:
        yield client
    finally:
        await delete_all_rooms(client)
        await client.aclose()


@pytest.fixture
async def leases(fleet: Fleet) -> AsyncIterator[RedisStore]:
    store = RedisStore(RedisSettings(url=fleet.redis.url, node_id="test"))
    try:
        yield store
    finally:
        await store.aclose()
