"""The agent's outgoing audio: one ``AudioSource``, paced natively or by this class.

With ``queue_ms > 0`` the rtc SDK queues the audio and a native task per source wakes every
10 ms to feed WebRTC, even when the queue is empty: a published idle source costs about 25 CPU
ms per room-second, half of what an idle room costs in all (bench/rtc_floor.py). With
``queue_ms == 0`` the SDK sends each 10 ms frame the moment it is captured and this class paces
them in real time, at most ``lead_ms`` ahead of playout (the margin that absorbs a stalled event
loop); nothing runs between replies.
"""

from __future__ import annotations

from livekit import rtc

from actors._clock import Clock

_BATCH_S = 0.02  # frames sent per wake-up: fewer wake-ups, and the lead never drops below it


class AudioOut:
    """Audio handed to ``play`` leaves in real time; ``clear`` drops what has not left yet."""

    def __init__(self, sample_rate: int, *, queue_ms: int, lead_ms: int, clock: Clock) -> None:
        self.sample_rate = sample_rate
        self.source = rtc.AudioSource(sample_rate, 1, queue_size_ms=queue_ms)
        self._native = queue_ms > 0
        self._lead_s = lead_ms / 1000
        self._clock = clock
        self._frame_samples = sample_rate // 100
        self._frame_bytes = self._frame_samples * 2
        self._remainder = b""
        self._playout_end = 0.0  # when the audio sent so far has played out
        self._generation = 0  # bumped by clear(): a play() in progress stops sending

    @property
    def queued_s(self) -> float:
        """Audio handed over that has not been played out yet."""
        if self._native:
            return self.source.queued_duration
        return max(0.0, self._playout_end - self._clock.monotonic())

    async def publish(self, room: rtc.Room) -> str:
        """Publish this source as the agent's microphone track; the track's sid."""
        track = rtc.LocalAudioTrack.create_audio_track("agent-voice", self.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        publication = await room.local_participant.publish_track(track, options)
        return publication.sid

    async def play(self, pcm: bytes) -> None:
        """Send 16-bit mono ``pcm``; returns once it has left (or ``clear`` dropped it)."""
        if self._native:
            await self.source.capture_frame(rtc.AudioFrame(pcm, self.sample_rate, 1, len(pcm) // 2))
            return
        data = self._remainder + pcm
        usable = len(data) - len(data) % self._frame_bytes
        self._remainder = data[usable:]
        await self._send_frames(data[:usable])

    async def wait_for_playout(self) -> None:
        """Send what is left (padded to a whole frame) and wait until it has played out."""
        if self._native:
            await self.source.wait_for_playout()
            return
        if self._remainder:
            frame = self._remainder.ljust(self._frame_bytes, b"\0")
            self._remainder = b""
            await self._send_frames(frame)
        await self._clock.sleep(max(0.0, self._playout_end - self._clock.monotonic()))

    def clear(self) -> None:
        """Drop audio not sent yet (barge-in); what has been sent plays out."""
        if self._native:
            self.source.clear_queue()
            return
        self._generation += 1
        self._remainder = b""
        self._playout_end = min(self._playout_end, self._clock.monotonic())

    async def aclose(self) -> None:
        await self.source.aclose()

    async def _send_frames(self, data: bytes) -> None:
        generation = self._generation
        now = self._clock.monotonic()
        # Behind (a new reply, or a stall longer than the lead): playout restarts now.
        self._playout_end = max(self._playout_end, now)
        for offset in range(0, len(data), self._frame_bytes):
            # Checked before every frame, not only after a sleep: a clear() that came while a
            # frame was being captured would otherwise let a lead's worth of the old audio out.
            if generation != self._generation:
                return
            ahead = self._playout_end - self._clock.monotonic()
            if ahead >= self._lead_s:
                await self._clock.sleep(ahead - self._lead_s + _BATCH_S)
                if generation != self._generation:
                    return
                self._playout_end = max(self._playout_end, self._clock.monotonic())
            frame = data[offset : offset + self._frame_bytes]
            await self.source.capture_frame(
                rtc.AudioFrame(frame, self.sample_rate, 1, self._frame_samples)
            )
            self._playout_end += 0.01
