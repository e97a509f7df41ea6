"""What a Redis failure becomes above ``_redis.py``: a ``CoordinationError`` that names the
setting to fix and says whether trying again may help, on a real redis-server."""

from __future__ import annotations

import socket

import pytest
from redis import asyncio as aioredis

from actors import CoordinationError
from supervisor.coordination import RedisStore
from tests.failover._redis_server import RedisServer
from tests.failover.conftest import fast_settings

pytestmark = [pytest.mark.anyio, pytest.mark.failover]


async def refusal(url: str) -> CoordinationError:
    store = RedisStore(fast_settings(url, "probe", timeout_s=1.0, lease_ttl_s=3.0))
    try:
        with pytest.raises(CoordinationError) as caught:
            await store.lease_holder("r1")
        return caught.value
    finally:
        await store.aclose()


async def test_wrong_credentials_name_the_url(redis_server: RedisServer) -> None:
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await admin.acl_setuser("probe", enabled=True, passwords=["+right"], commands=["+@all"])
    finally:
        await admin.aclose()
    error = await refusal(redis_server.url.replace("redis://", "redis://probe:wrong@"))
    assert "refused the credentials" in str(error) and "[redis] url" in str(error)
    assert error.retryable


async def test_a_missing_permission_is_final_and_says_what_is_needed(
    redis_server: RedisServer,
) -> None:
    admin = aioredis.Redis.from_url(redis_server.url)
    try:  # may log in and read, but not run scripts
        await admin.acl_setuser(
            "reader", enabled=True, passwords=["+pw"], commands=["+@read"], keys=["*"]
        )
    finally:
        await admin.aclose()
    store = RedisStore(
        fast_settings(redis_server.url.replace("redis://", "redis://reader:pw@"), "probe")
    )
    try:
        with pytest.raises(CoordinationError) as caught:
            await store.acquire_lease("r1", "probe", 1000)
    finally:
        await store.aclose()
    assert "NOPERM" in str(caught.value) and "EVALSHA" in str(caught.value)
    assert not caught.value.retryable


async def test_an_unreachable_server_is_retryable() -> None:
    with socket.socket() as free:  # a port nothing listens on once closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    error = await refusal(f"redis://127.0.0.1:{port}/0")
    assert "unreachable or too slow" in str(error) and error.retryable
