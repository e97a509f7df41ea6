"""A bare rtc agent for bench/rtc_floor.py: N rooms in one process doing only what ``--mode`` says.

Modes, each adding to the one before:

- ``join``: connected, subscribed to nothing;
- ``subscribe``: subscribed to each caller's microphone, no AudioStream (nobody pulls the audio);
- ``stream``: an AudioStream per microphone (16 kHz mono, ``--frame-ms``), frames read and dropped;
- ``source``: also creates an AudioSource per room (``--queue-ms``), unpublished and fed nothing;
- ``publish``: publishes that source's track (as an agent between replies).

Prints ``{"ready": N}`` once every room is in the mode's steady state, then runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from livekit import api, rtc

MODES = ("join", "subscribe", "stream", "source", "publish")


async def drain(track: rtc.Track, frame_ms: int, counter: list[int]) -> None:
    stream = rtc.AudioStream.from_track(
        track=track, sample_rate=16_000, num_channels=1, frame_size_ms=frame_ms
    )
    async for _event in stream:
        counter[0] += 1


async def run_room(
    name: str,
    args: argparse.Namespace,
    ready: asyncio.Event,
    counter: list[int],
    tasks: set[asyncio.Task[None]],
    sources: list[rtc.AudioSource],
) -> rtc.Room:
    level = MODES.index(args.mode)
    room = rtc.Room()
    token = (
        api.AccessToken(args.key, args.secret)
        .with_identity(f"floor-agent-{name}")
        .with_kind("agent")
        .with_grants(api.VideoGrants(room_join=True, room=name))
        .to_jwt()
    )

    @room.on("track_subscribed")
    def _subscribed(track: rtc.Track, *_: object) -> None:
        if level >= MODES.index("stream"):
            task = asyncio.get_running_loop().create_task(drain(track, args.frame_ms, counter))
            tasks.add(task)
        ready.set()

    await room.connect(
        args.url, token, rtc.RoomOptions(auto_subscribe=level >= MODES.index("subscribe"))
    )
    if level >= MODES.index("source"):
        source = rtc.AudioSource(24_000, 1, queue_size_ms=args.queue_ms)
        sources.append(source)
    if level >= MODES.index("publish"):
        track = rtc.LocalAudioTrack.create_audio_track("agent", source)
        await room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        if args.mute:
            track.mute()
    if level == 0:
        ready.set()
    return room


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--rooms", required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--frame-ms", type=int, default=40)
    parser.add_argument("--queue-ms", type=int, default=400)
    parser.add_argument("--mute", action="store_true", help="mute the published track")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    names = args.rooms.split(",")
    counter = [0]
    tasks: set[asyncio.Task[None]] = set()
    sources: list[rtc.AudioSource] = []
    readies = [asyncio.Event() for _ in names]
    rooms = [
        await run_room(name, args, ready, counter, tasks, sources)
        for name, ready in zip(names, readies, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=60)
    sys.stdout.write(json.dumps({"ready": len(rooms)}) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    sys.stdout.write(json.dumps({"frames": counter[0]}) + "\n")
    sys.stdout.flush()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(r.disconnect() for r in rooms), return_exceptions=True)


if __name__ == "__main__":
    if "uvloop" in sys.argv:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
