"""Captions and agent state, published to the room in order by one task.

User and agent text go out on the ``lk.transcription`` text-stream topic with LiveKit's
transcription attributes, and the agent's state in its ``lk.agent.state`` attribute, so
LiveKit's front-end components show them. Publishing awaits the network, so the actor only
queues work here; interim captions are dropped (and counted) if the queue is full, finals and
state changes never are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
from livekit import rtc

from actors._metrics import DATA_MESSAGES
from actors.room._settings import CLOSE_BOUND_S

__all__ = ("AgentCaption", "Captions", "SetState", "UserCaption")

logger = logging.getLogger(__name__)

TOPIC_TRANSCRIPTION = "lk.transcription"
ATTR_SEGMENT = "lk.segment_id"
ATTR_TRACK = "lk.transcribed_track_id"
ATTR_FINAL = "lk.transcription_final"
ATTR_AGENT_STATE = "lk.agent.state"


@dataclass(frozen=True, slots=True)
class UserCaption:
    identity: str
    track_sid: str
    segment_id: str
    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class AgentCaption:
    """A delta of the agent's current segment; ``final`` closes the segment."""

    segment_id: str
    delta: str
    final: bool = False


@dataclass(frozen=True, slots=True)
class SetState:
    state: str


CaptionJob = UserCaption | AgentCaption | SetState


class Captions:
    """Owns the publishing task's queue. ``run()`` must be started in the actor's task group."""

    def __init__(self, room: rtc.Room, *, agent_track_sid: str, capacity: int = 256) -> None:
        self._room = room
        self.agent_track_sid = agent_track_sid
        self._send, self._receive = anyio.create_memory_object_stream[CaptionJob](capacity)
        self._writers: dict[str, rtc.TextStreamWriter] = {}
        self.state = ""
        self._done = anyio.Event()

    def post(self, job: CaptionJob) -> None:
        """Queue a job; never blocks."""
        try:
            self._send.send_nowait(job)
        except anyio.WouldBlock:
            DATA_MESSAGES.labels(topic=TOPIC_TRANSCRIPTION, result="dropped").inc()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.post(SetState(state))

    def close(self) -> None:
        self._send.close()

    async def aclose(self, timeout_s: float = 1.0) -> None:
        """``close``, then wait (at most ``timeout_s``) until the queued captions are out: a
        room whose agent leaves right after a reply (``end_call``) closes its last caption
        instead of cutting it."""
        self.close()
        with anyio.move_on_after(timeout_s):
            await self._done.wait()

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self._done.set()

    async def _run(self) -> None:
        with self._send, self._receive:  # a cancelled run (a crashed room) closes both ends
            async for job in self._receive:
                try:
                    await self._publish(job)
                except Exception as exc:  # a caption is not worth a room; log and go on
                    DATA_MESSAGES.labels(topic=TOPIC_TRANSCRIPTION, result="error").inc()
                    logger.warning(
                        "publishing a caption failed", extra={"error": type(exc).__name__}
                    )
        for writer in self._writers.values():
            with anyio.move_on_after(CLOSE_BOUND_S, shield=True):
                try:
                    await writer.aclose()
                except rtc.StreamError:  # the room is going; an unfinished caption stays so
                    DATA_MESSAGES.labels(topic=TOPIC_TRANSCRIPTION, result="error").inc()

    async def _publish(self, job: CaptionJob) -> None:
        lp = self._room.local_participant
        match job:
            case UserCaption():
                writer = await lp.stream_text(
                    topic=TOPIC_TRANSCRIPTION,
                    sender_identity=job.identity,
                    attributes={
                        ATTR_SEGMENT: job.segment_id,
                        ATTR_TRACK: job.track_sid,
                        ATTR_FINAL: "true" if job.final else "false",
                    },
                )
                await writer.write(job.text)
                await writer.aclose()
            case AgentCaption():
                agent_writer = self._writers.get(job.segment_id)
                if agent_writer is None:
                    agent_writer = await lp.stream_text(
                        topic=TOPIC_TRANSCRIPTION,
                        attributes={
                            ATTR_SEGMENT: job.segment_id,
                            ATTR_TRACK: self.agent_track_sid,
                            ATTR_FINAL: "false",
                        },
                    )
                    self._writers[job.segment_id] = agent_writer
                if job.delta:
                    await agent_writer.write(job.delta)
                if job.final:
                    del self._writers[job.segment_id]
                    await agent_writer.aclose(
                        attributes={
                            ATTR_SEGMENT: job.segment_id,
                            ATTR_TRACK: self.agent_track_sid,
                            ATTR_FINAL: "true",
                        }
                    )
            case SetState(state=state):
                await lp.set_attributes({ATTR_AGENT_STATE: state})
