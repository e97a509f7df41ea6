"""Pulse wakes the waits begun before a fire, and only those."""

from __future__ import annotations

import anyio
import pytest
from anyio.abc import TaskStatus

from actors._pulse import Pulse

pytestmark = pytest.mark.anyio


async def test_a_fire_wakes_every_wait_begun_before_it() -> None:
    pulse = Pulse()
    woken: list[int] = []

    async def waiter(n: int, *, task_status: TaskStatus[None]) -> None:
        task_status.started()
        await pulse.wait()
        woken.append(n)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for n in range(3):
                await tg.start(waiter, n)
            pulse.fire()
    assert sorted(woken) == [0, 1, 2]


async def test_a_wait_begun_after_a_fire_waits_for_the_next() -> None:
    pulse = Pulse()
    pulse.fire()
    with anyio.move_on_after(0.05) as scope:
        await pulse.wait()
    assert scope.cancelled_caught


async def test_next_remembers_a_fire_during_work() -> None:
    pulse = Pulse()
    ahead = pulse.next()
    pulse.fire()  # fired while the caller was busy elsewhere
    assert ahead.is_set()
    assert not pulse.next().is_set()
