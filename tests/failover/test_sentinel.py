"""``redis+sentinel://`` URLs through redis-py's Sentinel client against a real
redis-sentinel, with a failover of the primary while a lease and a floor are held."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from actors import CoordinationError
from supervisor.coordination import LeaseTable, RedisFloor, RedisStore
from tests.failover._sentinel import SentinelSetup
from tests.failover.conftest import fast_settings
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.failover, pytest.mark.anyio]


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[SentinelSetup]:
    setup = SentinelSetup(tmp_path / "sentinel")
    setup.start()
    try:
        yield setup
    finally:
        setup.stop()


async def test_a_lease_and_the_floor_survive_a_failover_of_the_primary(
    sentinel: SentinelSetup,
) -> None:
    settings = fast_settings(sentinel.url, "here", lease_ttl_s=1.5, timeout_s=0.5)
    store = RedisStore(settings)
    leases = LeaseTable(settings, store)
    floor = RedisFloor(store, "r", ttl_s=3.0, gap_s=0.0)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(floor.run)
            # A fresh Redis holds new leases off for one TTL.
            await poll_until(lambda: leases.claim("r"), deadline_s=10, what="the lease won")
            tg.start_soon(leases.keep, "r")
            await floor.take("concierge:RE_1")
            old = sentinel.primary_port()
            await anyio.to_thread.run_sync(sentinel.failover)
            await poll_until(
                lambda: sentinel.primary_port() not in (None, old),
                deadline_s=20,
                what="the replica promoted",
            )
            paused_at = anyio.current_time()

            async def answers() -> bool:
                try:
                    return await store.lease_holder("r") == "here"
                except CoordinationError:
                    return False  # the short pause of the switch

            await poll_until(answers, deadline_s=10, what="the lease, held, on the new primary")
            print(f"Redis answered again {anyio.current_time() - paused_at:.2f} s after the switch")  # noqa: T201
            # Nothing else changed: the lease is renewed on the new primary, the floor is held.
            assert await store.renew_lease("r", "here", 3000) > 0
            assert floor.holder == "concierge:RE_1"
            assert await store.renew_floor("r", f"concierge:RE_1|{floor.fence}", 3000)
            tg.cancel_scope.cancel()
    finally:
        await store.aclose()
