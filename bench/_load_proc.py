"""One load-generator process: many speaking callers, one room each (used by bench/rooms.py).

Each caller joins its room, publishes a microphone fed continuously (silence, and a tone burst
every ``--period`` seconds once the agent listens), and subscribes to the agent's audio (the
peer framework waits for a subscriber before it plays) without reading it (no AudioStream, so
the load generator stays cheap). Per turn it records the time from the end of its burst to
the first chunk of the agent's reply caption. Output is JSON lines on stdout:

    {"ready": N}                                  all callers joined and heard
    {"burst": R}                                  a burst spoken into room R
    {"room": R, "turn_ms": T}                     one answered turn (caller-side, informative)
    {"stats": {"bursts": B, "answers": A}}        on SIGTERM/stdin EOF

Rooms per process are kept small (10-25): the rtc SDK's per-process event fan-out grows with
the square of its rooms (SDK-FACTS 1.1), and the load generator must not be the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import signal
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from livekit import api, rtc

RATE = 16_000
FRAME_MS = 40
SAMPLES = RATE * FRAME_MS // 1000


def _tone(ms: int) -> list[bytes]:
    t = np.arange(RATE * ms // 1000) / RATE
    pcm = (np.sin(2 * math.pi * 300 * t) * 9000).astype(np.int16).tobytes()
    step = SAMPLES * 2
    return [pcm[i : i + step].ljust(step, b"\0") for i in range(0, len(pcm), step)]


def _out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


@dataclass
class Bot:
    name: str
    room: rtc.Room = field(default_factory=rtc.Room)
    heard: asyncio.Event = field(default_factory=asyncio.Event)
    mic_sid: str = ""
    burst_end: float = 0.0
    waiting: bool = False
    bursts: int = 0
    answers: int = 0


async def run_bot(bot: Bot, url: str, token: str, period: float, burst_ms: int) -> None:
    source = rtc.AudioSource(RATE, 1, queue_size_ms=200)

    @bot.room.on("local_track_subscribed")
    def _heard(_track: rtc.Track) -> None:
        bot.heard.set()

    def on_caption(reader: rtc.TextStreamReader, sender: str) -> None:
        attrs = reader.info.attributes or {}
        if attrs.get("lk.transcribed_track_id") == bot.mic_sid:
            return  # a transcript of our own speech, not the agent's reply
        if bot.waiting:
            bot.waiting = False
            bot.answers += 1
            ms = (time.monotonic() - bot.burst_end) * 1000
            _out({"room": bot.name, "turn_ms": round(ms, 1)})

    bot.room.register_text_stream_handler("lk.transcription", on_caption)
    await bot.room.connect(url, token, rtc.RoomOptions(auto_subscribe=True))
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    pub = await bot.room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    bot.mic_sid = pub.sid
    silence = rtc.AudioFrame(bytes(SAMPLES * 2), RATE, 1, SAMPLES)
    burst = [rtc.AudioFrame(b, RATE, 1, SAMPLES) for b in _tone(burst_ms)]
    loop = asyncio.get_running_loop()
    next_burst = math.inf
    while True:
        if next_burst == math.inf and bot.heard.is_set():
            next_burst = loop.time() + random.uniform(0.5, period)
        if loop.time() >= next_burst:
            for frame in burst:
                await source.capture_frame(frame)
            # capture_frame returns once queued; the burst's last frame leaves after the queue.
            bot.burst_end = time.monotonic() + source.queued_duration
            bot.waiting = True
            bot.bursts += 1
            _out({"burst": bot.name})
            next_burst += period
        else:
            await source.capture_frame(silence)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--rooms", required=True, help="comma-separated room names")
    parser.add_argument("--period", type=float, default=4.0)
    parser.add_argument("--burst-ms", type=int, default=300)
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    args = parser.parse_args()
    bots = [Bot(name) for name in args.rooms.split(",")]
    tasks = []
    for bot in bots:
        token = (
            api.AccessToken(args.key, args.secret)
            .with_identity(f"caller-{bot.name}")
            .with_grants(api.VideoGrants(room_join=True, room=bot.name))
            .to_jwt()
        )
        tasks.append(asyncio.create_task(run_bot(bot, args.url, token, args.period, args.burst_ms)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        await asyncio.wait_for(
            asyncio.gather(*(b.heard.wait() for b in bots)), timeout=args.ready_timeout
        )
        _out({"ready": len(bots)})
    except TimeoutError:
        _out({"ready": sum(b.heard.is_set() for b in bots), "timeout": True})
    await stop.wait()
    _out(
        {"stats": {"bursts": sum(b.bursts for b in bots), "answers": sum(b.answers for b in bots)}}
    )
    for task in tasks:
        task.cancel()
    await asyncio.wait_for(
        asyncio.gather(*(b.room.disconnect() for b in bots), return_exceptions=True), timeout=10
    )


if __name__ == "__main__":
    asyncio.run(main())
