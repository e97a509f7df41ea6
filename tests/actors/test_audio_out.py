"""AudioOut paces direct-capture audio in real time, a lead ahead, and drops it on clear()."""

from __future__ import annotations

import time

import anyio
import pytest

from actors._clock import SYSTEM_CLOCK
from actors.room._audio_out import AudioOut

pytestmark = pytest.mark.anyio

RATE = 24_000
LEAD_MS = 60


def pcm(ms: int) -> bytes:
    return b"\x01\x00" * (RATE * ms // 1000)


async def test_audio_leaves_in_real_time_a_lead_ahead() -> None:
    out = AudioOut(RATE, queue_ms=0, lead_ms=LEAD_MS, clock=SYSTEM_CLOCK)
    try:
        started = time.monotonic()
        await out.play(pcm(600))
        sent_after = time.monotonic() - started
        # Not dumped at once: the last frame leaves about one lead before it plays out.
        assert sent_after >= 0.6 - LEAD_MS / 1000 - 0.05
        assert 0 < out.queued_s <= LEAD_MS / 1000 + 0.01
        await out.wait_for_playout()
        assert time.monotonic() - started >= 0.59
        assert out.queued_s == 0
    finally:
        await out.aclose()


async def test_clear_stops_sending_at_once() -> None:
    out = AudioOut(RATE, queue_ms=0, lead_ms=LEAD_MS, clock=SYSTEM_CLOCK)
    try:
        returned = anyio.Event()

        async def speak() -> None:
            await out.play(pcm(5_000))
            returned.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(speak)
            with anyio.fail_after(2):
                # AudioOut has no event to wait on (it would cost every frame a set()): poll.
                while out.queued_s < LEAD_MS / 1000 - 0.03:  # noqa: ASYNC110
                    await anyio.sleep(0.005)
            out.clear()
            with anyio.fail_after(0.5):  # the next wake-up sees the clear, not 5 s later
                await returned.wait()
        assert out.queued_s == 0
    finally:
        await out.aclose()


async def test_partial_frames_wait_for_the_next_chunk_and_are_padded_at_the_end() -> None:
    out = AudioOut(RATE, queue_ms=0, lead_ms=LEAD_MS, clock=SYSTEM_CLOCK)
    try:
        await out.play(pcm(15))  # one 10 ms frame leaves, 5 ms waits
        assert 0.005 < out.queued_s <= 0.011
        await out.play(pcm(5))  # completes the second frame
        assert 0.015 < out.queued_s <= 0.021
        await out.play(pcm(3))
        with anyio.fail_after(1):
            await out.wait_for_playout()  # the 3 ms are sent as a padded frame, then played
        assert out.queued_s == 0
    finally:
        await out.aclose()


async def test_native_queue_reports_the_sdk_queue() -> None:
    out = AudioOut(RATE, queue_ms=200, lead_ms=LEAD_MS, clock=SYSTEM_CLOCK)
    try:
        await out.play(pcm(100))
        assert 0 < out.queued_s <= 0.1
        out.clear()
        assert out.queued_s == 0
    finally:
        await out.aclose()
