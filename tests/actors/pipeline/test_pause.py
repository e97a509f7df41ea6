from __future__ import annotations

import anyio
import pytest
from anyio.lowlevel import checkpoint
from prometheus_client import REGISTRY

from actors._clock import Clock
from actors.pipeline import ReplyHold

pytestmark = pytest.mark.anyio

RESUMED = "voice_supervisor_false_interruptions_total"


class StepClock:
    """A clock whose sleeps end when the test says so."""

    def __init__(self) -> None:
        self.t = 0.0
        self.woken = anyio.Event()

    def monotonic(self) -> float:
        return self.t

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        await self.woken.wait()


def resumed() -> float:
    return REGISTRY.get_sample_value(RESUMED) or 0.0


async def test_a_hold_stops_the_audio_until_released() -> None:
    hold = ReplyHold(StepClock(), 1.0)
    assert hold.hold() and hold.held and not hold.hold()  # one hold at a time
    let_go = anyio.Event()

    async def producer() -> None:
        await hold.wait()
        let_go.set()

    before = resumed()
    async with anyio.create_task_group() as tg:
        tg.start_soon(producer)
        await checkpoint()
        assert not let_go.is_set()
        hold.release()
    assert let_go.is_set() and not hold.held
    assert resumed() == before + 1


async def test_a_hold_expires_after_its_timeout() -> None:
    clock = StepClock()
    hold = ReplyHold(clock, 1.5)
    hold.hold()
    async with anyio.create_task_group() as tg:
        tg.start_soon(hold.expire)
        await checkpoint()
        assert hold.held
        clock.woken.set()
    assert not hold.held


async def test_the_end_of_a_reply_releases_without_counting_a_false_interruption() -> None:
    hold = ReplyHold(StepClock(), 1.0)
    hold.hold()
    before = resumed()
    hold.release(resume=False)
    assert not hold.held and resumed() == before


def test_holding_can_be_turned_off() -> None:
    clock: Clock = StepClock()
    hold = ReplyHold(clock, 0.0)
    assert not hold.hold() and not hold.held
