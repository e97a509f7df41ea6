"""Leases, per-user limits and the lock against a real redis-server (restarted, stopped)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import anyio
import pytest
from redis import asyncio as aioredis

from actors.providers import ChatMessage
from supervisor import parse_config
from supervisor.coordination import (
    Coordinator,
    GatedLlm,
    LeaseTable,
    RedisStore,
    UserLimits,
)
from tests.failover._redis_server import RedisServer
from tests.failover.conftest import fast_settings
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.failover, pytest.mark.anyio]


def table(server: RedisServer, node: str) -> tuple[LeaseTable, RedisStore]:
    settings = fast_settings(server.url, node)
    store = RedisStore(settings)
    return LeaseTable(settings, store), store


def renewed(leases: LeaseTable, room: str = "r1") -> float:
    at = leases.renewed_at(room)
    assert at is not None, "the lease is not held"
    return at


async def claimed(leases: LeaseTable, room: str) -> LeaseTable:
    """Claim ``room`` once the fresh Redis's hold-off (one TTL) has passed."""
    await poll_until(lambda: leases.claim(room), deadline_s=3, what=f"lease of {room} won")
    return leases


def test_redis_settings_are_validated_and_read_from_the_environment() -> None:
    config = parse_config({"redis": {"lease_ttl_s": 3}}, environ={"REDIS_URL": "redis://h:1/0"})
    assert config.redis.url == "redis://h:1/0"
    assert config.redis.enabled and config.redis.renew_interval_s == 1.0
    assert "-" in config.redis.node_id
    assert not parse_config({}, environ={}).redis.enabled
    with pytest.raises(Exception, match="timeout_s"):
        parse_config({"redis": {"lease_ttl_s": 1, "timeout_s": 0.5}}, environ={})


async def test_a_fresh_redis_holds_new_leases_off_for_one_ttl_then_one_node_wins(
    redis_server: RedisServer,
) -> None:
    a, store_a = table(redis_server, "node-a")
    b, store_b = table(redis_server, "node-b")
    try:
        assert not await a.claim("r1")  # no epoch marker yet: Redis may have lost leases
        await claimed(a, "r1")
        assert not await b.claim("r1")
        assert await store_b.lease_holder("r1") == "node-a"
        assert a.held == {"r1"} and b.held == frozenset()
        await a.release("r1")
        assert await store_b.lease_holder("r1") is None
        assert await b.claim("r1")
    finally:
        await store_a.aclose()
        await store_b.aclose()


async def test_a_kept_lease_outlives_its_ttl_and_a_taken_one_is_reported(
    redis_server: RedisServer, store: RedisStore
) -> None:
    a, store_a = table(redis_server, "node-a")
    try:
        await claimed(a, "r1")
        async with anyio.create_task_group() as tg:
            lost: list[str] = []

            async def keep() -> None:
                lost.append(await a.keep("r1"))

            tg.start_soon(keep)
            # Three TTLs later the lease is still node-a's: renewals keep it.
            ttl = fast_settings(redis_server.url, "node-a").lease_ttl_s
            start = renewed(a)
            for n in range(1, 4):

                def past(n: int = n) -> bool:
                    return renewed(a) >= start + n * ttl

                await poll_until(past, deadline_s=2 * ttl, what="renewals")
                assert await store.lease_holder("r1") == "node-a"
            assert not lost
            # Someone else takes the key: the keeper notices at its next renewal.
            thief = aioredis.Redis.from_url(redis_server.url)
            await thief.set(store.lease_key("r1"), "node-b", px=10_000)
            await thief.aclose()
            await poll_until(lambda: lost, deadline_s=1.0, what="lease loss reported")
        assert lost == ["taken"]
        assert a.held == frozenset()
    finally:
        await store_a.aclose()


async def test_a_short_redis_restart_keeps_the_lease_and_holds_others_off(
    redis_server: RedisServer,
) -> None:
    a, store_a = table(redis_server, "node-a")
    b, store_b = table(redis_server, "node-b")
    try:
        await claimed(a, "r1")
        async with anyio.create_task_group() as tg:
            lost: list[str] = []

            async def keep() -> None:
                lost.append(await a.keep("r1"))

            tg.start_soon(keep)
            redis_server.stop()  # every key is gone
            redis_server.start()
            # node-b may not take the room while node-a re-claims it ...
            assert not await b.claim("r1")
            holder = await poll_until(
                lambda: store_b.lease_holder("r1"), deadline_s=1.0, what="lease re-claimed"
            )
            assert holder == "node-a"
            # ... and it stays node-a's, renewed past node-b's hold-off (one TTL).
            ttl = fast_settings(redis_server.url, "node-b").lease_ttl_s
            since = renewed(a)
            await poll_until(lambda: renewed(a) > since + ttl, deadline_s=3 * ttl, what="renewed")
            assert not await b.claim("r1")
            assert not lost
            tg.cancel_scope.cancel()
    finally:
        await store_a.aclose()
        await store_b.aclose()


async def test_redis_down_longer_than_the_ttl_loses_the_lease_before_it_expires(
    redis_server: RedisServer,
) -> None:
    a, store_a = table(redis_server, "node-a")
    try:
        await claimed(a, "r1")
        async with anyio.create_task_group() as tg:
            lost: list[tuple[str, float]] = []

            async def keep() -> None:
                reason = await a.keep("r1")
                lost.append((reason, anyio.current_time()))

            tg.start_soon(keep)
            first = renewed(a)
            await poll_until(lambda: renewed(a) > first, deadline_s=2.0, what="one renewal")
            redis_server.stop()
            stopped_at = anyio.current_time()
            await poll_until(lambda: lost, deadline_s=2.0, what="lease loss reported")
        ((reason, at),) = lost
        assert reason == "unreachable"
        # Lost within one TTL of the outage: before Redis could have let anyone else in.
        assert at - stopped_at < 0.9
    finally:
        await store_a.aclose()


async def test_per_user_room_cap_and_turn_rate_hold_across_daemons(
    redis_server: RedisServer,
) -> None:
    limits = {"max_rooms_per_user": 1, "turns_per_minute_per_user": 3}
    a = UserLimits(fast_settings(redis_server.url, "a", **limits), s_a := _store(redis_server))
    b = UserLimits(fast_settings(redis_server.url, "b", **limits), s_b := _store(redis_server))
    try:
        assert await a.check_turn("room-1", "u1") is None
        refusal = await b.check_turn("room-2", "u1")
        assert refusal is not None and "conversations open" in refusal
        assert await b.check_turn("room-3", "u2") is None  # another user
        assert await b.check_turn("room-4", None) is None  # rooms without a user: no limits
        await a.leave("room-1")
        assert await b.check_turn("room-2", "u1") is None  # its place is free now
        assert await b.check_turn("room-2", "u1") is None  # u1's third turn this minute
        refusal = await b.check_turn("room-2", "u1")
        assert refusal is not None and "going a bit fast" in refusal
        assert await a.check_turn("room-5", "u2") is not None  # u2 is in room-3 already
    finally:
        await s_a.aclose()
        await s_b.aclose()


async def test_limits_fail_open_when_redis_is_down(redis_server: RedisServer) -> None:
    settings = fast_settings(redis_server.url, "a", max_rooms_per_user=1)
    store = _store(redis_server)
    limits = UserLimits(settings, store)
    redis_server.stop()
    try:
        assert await limits.check_turn("room-1", "u1") is None
    finally:
        await store.aclose()


class _Llm:
    name = "echo"

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        for word in ("fine ", "thanks"):
            yield word

    async def aclose(self) -> None:
        pass


async def test_the_gate_says_the_limit_message_instead_of_answering(
    redis_server: RedisServer,
) -> None:
    # A Redis answer later than timeout_s lets the turn through (the gate fails open), so on a
    # loaded machine the default 0.2 s would make the second turn an answer now and then.
    settings = fast_settings(
        redis_server.url, "a", turns_per_minute_per_user=1, timeout_s=2.0, lease_ttl_s=6.0
    )
    coordinator = Coordinator(settings, store=_store(redis_server))
    async with anyio.create_task_group() as tg:
        await tg.start(coordinator.run)
        limits_store = RedisStore(settings)
        limits = UserLimits(settings, limits_store)
        assert limits.enabled
        llm = GatedLlm(_Llm(), limits, "room-1", lambda: "u1")
        first = [d async for d in llm.complete([ChatMessage("user", "hi", "alice")])]
        second = [d async for d in llm.complete([ChatMessage("user", "hi", "alice")])]
        assert "".join(first) == "fine thanks"
        assert "".join(second) == settings.turn_limit_message
        ok, details = coordinator.health()
        assert ok and details["node_id"] == "a" and details["leases"] == 0
        redis_server.stop()
        await poll_until(lambda: not coordinator.health()[0], deadline_s=15, what="redis down")
        assert "down_for_s" in coordinator.health()[1]
        coordinator.close()
    await limits_store.aclose()
    assert not UserLimits(fast_settings(redis_server.url, "b"), limits_store).enabled


def _store(server: RedisServer) -> RedisStore:
    return RedisStore(fast_settings(server.url, "x"))


async def test_a_free_room_goes_first_to_the_least_loaded_daemon(
    redis_server: RedisServer,
) -> None:
    sa = RedisStore(settings_a := fast_settings(redis_server.url, "a", balance_grace_s=0.5))
    sb = RedisStore(settings_b := fast_settings(redis_server.url, "b", balance_grace_s=0.5))
    a, b = LeaseTable(settings_a, sa), LeaseTable(settings_b, sb)
    try:
        await sa.heartbeat("a", 5_000, 0)
        await sb.heartbeat("b", 5_000, 0)
        await claimed(a, "r1")  # a: 1 lease, b: 0
        assert not await a.claim("r2")  # left to b for the grace period
        assert await b.claim("r2")  # now 1 each: a tie, first come first served
        assert await a.claim("r3")
        assert not await a.claim("r4")  # a: 2, b: 1
        # Past the grace, any daemon takes it (b may not want it: skip rules, max_rooms).
        await poll_until(lambda: a.claim("r4"), deadline_s=2, what="r4 taken after the grace")
        await sb.heartbeat("b", 5_000, -1)  # b leaves: a is the only live node
        assert await a.claim("r5")
    finally:
        await sa.aclose()
        await sb.aclose()
