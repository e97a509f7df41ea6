"""A silent participant that hears several agents apart: when each was audible, as received.

It subscribes to the audio of the agents it is told about and notes the arrival time of every
audible frame of each, so a test can tell whether two agents were ever heard at once (measured
on the subscribed tracks, as a caller would hear them) and a benchmark how long one agent's end
and the next one's start are apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import numpy as np
from livekit import rtc

from tests.harness.participants import ServerAccess, participant_token

RATE = 16_000
FRAME_MS = 10
_VOICE_PEAK = 1000.0  # int16 peak above which a frame counts as voice (as the caller's)
_GAP_S = 0.15
"""Audible frames closer than this are one stretch of speech (the tone of a word has no gaps;
the silence between two replies of the fakes is longer)."""


@dataclass
class Ears:
    room: rtc.Room
    _audible: dict[str, list[int]] = field(default_factory=dict)
    """Per agent identity: the index of each audible frame in its stream."""
    _base: dict[str, float] = field(default_factory=dict)
    """Per agent identity: when its stream's frame 0 came out (anyio clock)."""

    @property
    def voiced(self) -> dict[str, list[float]]:
        """Per agent identity: when each audible frame came out of the caller's side of the
        track (anyio clock). The rtc SDK hands out one 10 ms frame per 10 ms, silence too, so a
        frame's time is its stream's start plus its index: a stall of this process's event loop
        (which delays reading) does not move it."""
        frame_s = FRAME_MS / 1000
        return {
            who: [self._base[who] + i * frame_s for i in indices]
            for who, indices in self._audible.items()
        }

    def spans(self, identity: str) -> list[tuple[float, float]]:
        """Stretches of speech of one agent: (first frame's start, last frame's end)."""
        frame_s = FRAME_MS / 1000
        spans: list[tuple[float, float]] = []
        for at in self.voiced.get(identity, []):
            if spans and at - spans[-1][1] <= _GAP_S:
                spans[-1] = (spans[-1][0], at)
            else:
                spans.append((at - frame_s, at))
        return spans

    def overlap_ms(self) -> float:
        """How long two agents were audible at once, in total (0 when they never were)."""
        identities = list(self.voiced)
        total = 0.0
        for i, a in enumerate(identities):
            for b in identities[i + 1 :]:
                for s1, e1 in self.spans(a):
                    for s2, e2 in self.spans(b):
                        total += max(0.0, min(e1, e2) - max(s1, s2))
        return total * 1000

    def hand_overs_ms(self) -> list[float]:
        """For each stretch that follows another agent's: the silence between them (ms;
        negative when they overlapped)."""
        spans = sorted((s, e, who) for who in self.voiced for s, e in self.spans(who))
        return [
            (s2 - e1) * 1000
            for (_, e1, w1), (s2, _, w2) in zip(spans, spans[1:], strict=False)
            if w1 != w2
        ]

    async def _record(self, track: rtc.Track, identity: str) -> None:
        audible = self._audible.setdefault(identity, [])
        frame_s = FRAME_MS / 1000
        stream = rtc.AudioStream.from_track(
            track=track, sample_rate=RATE, num_channels=1, frame_size_ms=FRAME_MS
        )
        try:
            index = 0
            async for event in stream:
                # A frame is read at or after it came out: the earliest reading is the truest.
                start = anyio.current_time() - index * frame_s
                self._base[identity] = min(self._base.get(identity, start), start)
                samples = np.frombuffer(event.frame.data, dtype=np.int16)
                if len(samples) and float(np.abs(samples).max()) > _VOICE_PEAK:
                    audible.append(index)
                index += 1
        finally:
            await stream.aclose()


@asynccontextmanager
async def ears(
    server: ServerAccess, room_name: str, agents: Iterable[str], identity: str = "ears"
) -> AsyncIterator[Ears]:
    """Join ``room_name`` silently and note when each of ``agents`` is audible."""
    wanted = set(agents)
    room = rtc.Room()
    listener = Ears(room)
    async with anyio.create_task_group() as tg:

        @room.on("track_subscribed")
        def _on_track(
            track: rtc.Track, _pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant
        ) -> None:
            if p.identity in wanted and track.kind == rtc.TrackKind.KIND_AUDIO:
                tg.start_soon(listener._record, track, p.identity)

        await room.connect(server.ws_url, participant_token(server, room_name, identity))
        for p in room.remote_participants.values():
            for pub in p.track_publications.values():
                if p.identity in wanted and pub.track is not None:
                    tg.start_soon(listener._record, pub.track, p.identity)
        try:
            yield listener
        finally:
            tg.cancel_scope.cancel()
            with anyio.move_on_after(5, shield=True):
                await room.disconnect()
