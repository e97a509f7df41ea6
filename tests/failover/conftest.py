"""Fixtures of the failover tests: a real redis-server, and a Redis store on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from supervisor.coordination import RedisSettings, RedisStore
from tests.conftest import ARTIFACTS
from tests.failover._redis_server import RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(ARTIFACTS / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


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
