"""AudioOut paces direct-capture audio in real time, a lead ahead, and drops it on clear().

Its pacing runs on a jump clock (its sleeps move time, at once), so the figures checked are
exact and no load on the machine can move them; the frames still go to a real AudioSource.
"""

from __future__ import annotations

import anyio
import pytest

from actors._clock import SYSTEM_CLOCK
from actors.room._audio_out import _BATCH_S, AudioOut
from tests.fakes.clock import JumpClock

pytestmark = pytest.mark.anyio

RATE = 24_000
LEAD_MS = 60


def pcm(ms: int) -> bytes:
    return b"\x01\x00" * (RATE * ms // 1000)


async def test_audio_leaves_in_real_time_a_lead_ahead() -> None:
    clock = JumpClock()
    out = AudioOut(RATE, queue_ms=0, lead_ms=LEAD_MS, clock=clock)
    try:
        started = clock.t
        await out.play(pcm(600))
        # Not dumped at once: the last frame leaves about one lead before it plays out.
        assert clock.t - started == pytest.approx(0.6 - LEAD_MS / 1000)
        assert out.queued_s == pytest.approx(LEAD_MS / 1000)
        await out.wait_for_playout()
        assert clock.t - started == pytest.approx(0.6)
        assert out.queued_s == 0
    finally:
        await out.aclose()


async def test_clear_stops_sending_at_once() -> None:
    clock = JumpClock()
    out = AudioOut(RATE, queue_ms=0, lead_ms=LEAD_MS, clock=clock)
    try:
        returned = anyio.Event()

        async def speak() -> None:
            await out.play(pcm(5_000))
            returned.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(speak)
            with anyio.fail_after(5):
                # One step of play() a turn, until its lead is out (give or take a float).
                while out.queued_s < LEAD_MS / 1000 - 0.005:  # noqa: ASYNC110
                    await anyio.lowlevel.checkpoint()
            cleared_at = clock.t
            out.clear()
            with anyio.fail_after(5):
                await returned.wait()
        # It stopped at once, not 5 s of audio later: at most the sleep it was in ends, and at
        # most the frame it was capturing plays out (the rtc SDK answers captures from its own
        # thread, so which of the two it was in varies).
        assert clock.t - cleared_at <= _BATCH_S + 1e-9
        assert out.queued_s <= 0.01 + 1e-9
    finally:
        await out.aclose()


async def test_partial_frames_wait_for_the_next_chunk_and_are_padded_at_the_end() -> None:
    clock = JumpClock()
    out = AudioOut(RATE, queue_ms=0, lead_ms=LEAD_MS, clock=clock)
    try:
        await out.play(pcm(15))  # one 10 ms frame leaves, 5 ms waits
        assert out.queued_s == pytest.approx(0.01)
        await out.play(pcm(5))  # completes the second frame
        assert out.queued_s == pytest.approx(0.02)
        await out.play(pcm(3))
        started = clock.t
        await out.wait_for_playout()  # the 3 ms are sent as a padded frame, then played
        assert clock.t - started == pytest.approx(0.03)
        assert out.queued_s == 0
    finally:
        await out.aclose()


async def test_native_queue_reports_the_sdk_queue() -> None:
    # The SDK's own queue drains in real time: 1 s queued cannot be gone by the next line.
    out = AudioOut(RATE, queue_ms=2_000, lead_ms=LEAD_MS, clock=SYSTEM_CLOCK)
    try:
        await out.play(pcm(1_000))
        assert 0 < out.queued_s <= 1.0
        out.clear()
        assert out.queued_s == 0
    finally:
        await out.aclose()
