"""The floor and the conversation stream of a room whose agents are on two daemons, against a
real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from prometheus_client import REGISTRY

from actors.room import AgentProfile, Message, Speaks, Team
from supervisor.coordination import RedisFloor, RedisRelay, RedisStore
from tests.failover._redis_server import RedisServer
from tests.failover.conftest import fast_settings
from tests.harness.waits import poll_until

ROSTER = {
    "concierge": AgentProfile(identity="a-concierge", name="Ava"),
    "specialist": AgentProfile(identity="a-sam", name="Sam", speaks=Speaks.WHEN_ADDRESSED),
}

pytestmark = [pytest.mark.failover, pytest.mark.anyio]


@pytest.fixture
async def floors(redis_server: RedisServer) -> AsyncIterator[tuple[RedisFloor, RedisFloor]]:
    here = RedisStore(fast_settings(redis_server.url, "here"))
    there = RedisStore(fast_settings(redis_server.url, "there"))
    a = RedisFloor(here, "r", ttl_s=0.9, gap_s=0.05)
    b = RedisFloor(there, "r", ttl_s=0.9, gap_s=0.05)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(a.run)
            await tg.start(b.run)
            yield a, b
            tg.cancel_scope.cancel()
    finally:
        await here.aclose()
        await there.aclose()


async def test_one_daemons_agent_waits_for_the_others_and_each_take_has_a_newer_fence(
    floors: tuple[RedisFloor, RedisFloor],
) -> None:
    a, b = floors
    await a.take("concierge:RE_1")
    await a.take("concierge:RE_1")  # held already: at once, same fence
    first = a.fence
    taken = anyio.Event()

    async def specialist() -> None:
        await b.take("specialist:RE_2")
        taken.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(specialist)
        # Longer than a TTL: the holder's floor task renews it meanwhile.
        with anyio.move_on_after(1.2):
            await taken.wait()
        assert not taken.is_set() and a.holder == "concierge:RE_1"
        released = anyio.current_time()
        a.release("concierge:RE_1")
        with anyio.fail_after(5):
            await taken.wait()
    # Taken after the other agent's gap, with a fence above the first.
    assert anyio.current_time() - released >= 0.05
    assert b.holder == "specialist:RE_2" and b.fence > first


async def test_a_hold_that_expires_is_lost_and_cannot_free_the_next_one(
    redis_server: RedisServer,
) -> None:
    here = RedisStore(fast_settings(redis_server.url, "here"))
    there = RedisStore(fast_settings(redis_server.url, "there"))
    stalled = RedisFloor(here, "r2", ttl_s=0.5, gap_s=0.0)  # its floor task never runs
    b = RedisFloor(there, "r2", ttl_s=0.5, gap_s=0.0)
    lost = REGISTRY.get_sample_value("voice_supervisor_floor_lost_total") or 0.0
    try:
        await stalled.take("concierge:RE_1")
        with anyio.fail_after(5):
            await b.take("specialist:RE_2")  # once the stalled hold expired
        assert b.fence > stalled.fence
        # The stalled daemon wakes up: its renewal fails, it learns it lost the floor...
        await stalled._renew()  # noqa: SLF001 - what its floor task would do next
        assert stalled.holder is None
        assert REGISTRY.get_sample_value("voice_supervisor_floor_lost_total") == lost + 1
        # ...and its release (compare-and-delete on its own fence) leaves the new hold alone.
        assert not await here.release_floor("r2", f"concierge:RE_1|{stalled.fence}", "x", 1000)
        assert await there.renew_floor("r2", f"specialist:RE_2|{b.fence}", 500)
    finally:
        stalled.close()
        b.close()
        await here.aclose()
        await there.aclose()


async def test_news_reaches_the_rooms_agents_on_another_daemon(redis_server: RedisServer) -> None:
    here_store = RedisStore(fast_settings(redis_server.url, "here"))
    there_store = RedisStore(fast_settings(redis_server.url, "there"))
    here, there = Team("r"), Team("r")
    answered: list[str] = []
    ava = here.join("concierge", ROSTER, lambda: None)
    there.join("specialist", ROSTER, lambda: answered.append("specialist"))
    relays = [
        RedisRelay(store, team, "c-news", node_id=node, keep=20, block_s=0.05)
        for store, team, node in ((here_store, here, "here"), (there_store, there, "there"))
    ]
    here.relay, there.relay = relays
    try:
        async with anyio.create_task_group() as tg:
            for relay in relays:
                await tg.start(relay.run)
            reply = Message("assistant", "That is one for Sam. Over to you, Sam.", 1.0, "concierge")
            here.history.append(reply)
            ava.recorded(reply, "EV_1")
            await poll_until(lambda: answered, deadline_s=5, what="the hand-over over there")
            # The reply came first, so the specialist answers knowing it; nothing came back.
            assert [m.content for m in there.history.messages] == [reply.content]
            assert [m.content for m in here.history.messages] == [reply.content]
            tg.cancel_scope.cancel()
    finally:
        await here_store.aclose()
        await there_store.aclose()
