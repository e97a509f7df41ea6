"""The room actor: one agent in one LiveKit room, and everything the agent knows of it.

It owns the room connection, its mailbox and the participant states, sits at its room's
``Team`` (floor, the shared history, who answers: ``_team.py``), and emits participant, agent
and session events to persistence. It never blocks the loop, never touches another room, and
never logs user text or identities in a message body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from livekit import rtc

from actors._clock import SYSTEM_CLOCK, Clock
from actors._events import Event, new_event_id
from actors._exceptions import ActorCrashed, ActorStartError, OutboxFullError
from actors._payloads import AgentJoined, Payload, SessionData, TurnData, payload_json
from actors.room._access import AccessPolicy
from actors.room._data import DataTopics
from actors.room._handle import RoomHandle
from actors.room._listening import TrackAudio, track_pcm
from actors.room._messages import (
    ChatReceived,
    CommandReceived,
    DataRefused,
    Disconnected,
    MetadataChanged,
    ParticipantJoined,
    ParticipantLeft,
    RoomMessage,
    RoomSpec,
    StopRequested,
    StreamOpened,
    TrackSubscribed,
    TrackUnsubscribed,
)
from actors.room._people import People
from actors.room._ports import Persistence, Providers
from actors.room._profiles import AgentProfile, room_agents
from actors.room._quota import Admission
from actors.room._replies import ReplySender
from actors.room._rtc import connect_room
from actors.room._settings import DataSettings, RoomSettings, VoiceSettings
from actors.room._state import (
    ConversationHistory,
    Message,
    ParticipantState,
    RoomLifecycle,
    SessionInfo,
    parse_room_metadata,
)
from actors.room._team import Seat, Team
from actors.room._voice import VoicePipeline
from actors.room._wiring import close_queued_readers, joined_message, wire_room

__all__ = ("RoomActor", "RoomHandle")

logger = logging.getLogger(__name__)

RoomFactory = Callable[[], rtc.Room]


class RoomActor:
    """Joins one room as the agent and keeps its state until the room ends or it is stopped.

    Args:
        spec: which room, where, and the agent's token.
        settings: the ``[agent]`` settings.
        persistence: where events go (``emit`` never blocks).
        history_limit: how many stored messages to restore when a conversation resumes.
        providers: STT, LLM and TTS; None (or ``voice.enabled`` false) = no voice pipeline.
        voice: the ``[voice]`` settings.
        data: the ``[data]`` settings (commands and file uploads).
        clock: time source.
        room_factory: builds the ``rtc.Room`` (tests may pass a fake).
        track_audio: reads a subscribed track's frames (tests pass their own with a fake room).
        profiles: every agent profile by name ("" = ``[agent]``); ``spec.agent`` is this one.
        team: the room's agents in this process (None: a team of its own).
    """

    def __init__(
        self,
        spec: RoomSpec,
        settings: RoomSettings,
        persistence: Persistence,
        *,
        history_limit: int = 20,
        providers: Providers | None = None,
        voice: VoiceSettings | None = None,
        data: DataSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
        room_factory: RoomFactory = rtc.Room,
        track_audio: TrackAudio = track_pcm,
        profiles: Mapping[str, AgentProfile] | None = None,
        team: Team | None = None,
    ) -> None:
        self.spec = spec
        self._profiles = dict(profiles or {"": AgentProfile(identity=settings.identity)})
        self.team = team or Team(spec.room)
        self.seat: Seat | None = None
        self._settings = settings
        self._persistence = persistence
        self._history_limit = history_limit
        self._providers = providers
        self._voice_settings = voice or VoiceSettings()
        self.access = AccessPolicy(data or DataSettings())  # commands' and built-in tools'
        self._data: DataTopics | None = None
        self._admission = Admission(self.access.settings, clock)
        self.voice: VoicePipeline | None = None
        self._greeted = False
        self._clock = clock
        self._room_factory = room_factory
        self._track_audio = track_audio
        self.lifecycle = RoomLifecycle.CREATED
        self.people = People()
        self.history: ConversationHistory = self.team.history
        self.session = SessionInfo(conversation_id=None, user_id=None)
        self._instructions: str | None = None
        self.conversation_id = ""
        self.started_at = 0.0
        self.stop_reason = ""
        self._refused_events = 0
        self._inbox_send, self._inbox = anyio.create_memory_object_stream[RoomMessage](
            settings.inbox_size
        )
        self._stop = anyio.Event()

    # -- public surface -----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[RoomHandle] = anyio.TASK_STATUS_IGNORED) -> None:
        """Join the room, report ``started(handle)``, and serve the mailbox until the end.

        Raises:
            ActorStartError: joining failed or timed out.
            ActorCrashed: the actor failed after joining.
        """
        room = self._room_factory()
        self.lifecycle = self.lifecycle.to(RoomLifecycle.CONNECTING)
        wire_room(room, self._inbox_send, self._admission, self._clock, self._stop)
        try:
            await connect_room(
                room, self.spec.url, self.spec.token, self._settings.connect_timeout_s
            )
            with anyio.fail_after(self._settings.connect_timeout_s):
                await self._open_session(room)
        except BaseException as exc:
            self.lifecycle = self.lifecycle.to(RoomLifecycle.CLOSED)
            with anyio.move_on_after(self._settings.close_timeout_s, shield=True):
                await room.disconnect()
            self._inbox_send.close()
            self._inbox.close()
            if isinstance(exc, Exception):
                raise ActorStartError(
                    "room actor could not join its room; check [livekit] url and credentials"
                    " and [agent] connect_timeout_s"
                ) from exc
            raise
        self.lifecycle = self.lifecycle.to(RoomLifecycle.RUNNING)
        logger.info("room actor joined", extra=self._log_extra())
        handle = RoomHandle(self.spec.room, self.conversation_id, self._inbox_send, self._stop)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_stop, tg, name=f"room:{self.spec.room}:stop")
                replies = ReplySender(room)
                tg.start_soon(replies.run, name=f"room:{self.spec.room}:replies")
                self._data = DataTopics(
                    self.access.settings, self, replies, self._admission, self._inbox_send.send
                )
                await self._start_voice(room, tg)
                task_status.started(handle)
                await self._serve(tg)
                if self.voice is not None:
                    await self.voice.aclose()
                # The last answers (an "end" command's among them) leave before the agent.
                replies.close()
                with anyio.move_on_after(self._settings.close_timeout_s):
                    await replies.done.wait()
                tg.cancel_scope.cancel("room actor finished")
        except Exception as exc:
            self.stop_reason = self.stop_reason or "crashed"
            raise ActorCrashed("room actor failed while running") from exc
        except BaseException:
            # Cancelled by the owner (a lost lease, the drain deadline): the summary says so.
            self.stop_reason = self.stop_reason or "cancelled"
            raise
        finally:
            await self._shutdown(room)

    # -- the session --------------------------------------------------------------------------

    async def _open_session(self, room: rtc.Room) -> None:
        self.started_at = self._clock.now()
        self.session = parse_room_metadata(room.metadata)
        if self.session.conversation_id:
            self.conversation_id = self.session.conversation_id
        else:
            self.conversation_id = await self._persistence.agent_joined(
                self.spec.room, self.session.raw
            )
        roster = {n: self._profiles[n] for n in room_agents(room.metadata, self._profiles)}
        roster.setdefault(self.spec.agent, self._profiles[self.spec.agent])
        answer = lambda: None if self.voice is None else self.voice.answer_history()  # noqa: E731
        self.seat = self.team.join(self.spec.agent, roster, answer)  # handed the turn: answer
        if self._history_limit and not self.team.restore_claimed:
            self.team.restore_claimed = True  # one agent loads it for the team
            rows = await self._persistence.recent_messages(
                self.conversation_id, self._history_limit
            )
            self.history.restore(rows)
        self._emit(
            AgentJoined(
                identity=self._settings.identity,
                user_id=self.session.user_id,
                metadata=self.session.raw,
                restored_messages=self.history.restored,
                attempt=self.spec.attempt,
            )
        )
        for p in room.remote_participants.values():
            self._participant_joined(joined_message(p, self.started_at))

    async def _serve(self, tg: TaskGroup) -> None:
        async for message in self._inbox:
            match message:
                case ParticipantJoined():
                    self._participant_joined(message)
                    if not self._is_agent(message.identity):
                        self._greet()
                case ParticipantLeft(identity=identity, reason=reason, at=at):
                    self._participant_left(identity, reason, at)
                case MetadataChanged():
                    self._metadata_changed(message)
                case TrackSubscribed(identity=identity, track_sid=sid, track=track):
                    if self.voice is not None and not self._is_agent(identity):
                        self.voice.track_subscribed(identity, sid, track)
                case TrackUnsubscribed(track_sid=sid):
                    if self.voice is not None:
                        self.voice.track_unsubscribed(sid)
                case StreamOpened(topic=topic, identity=identity, reader=reader):
                    assert self._data is not None  # made before the mailbox is served
                    self._data.read(tg, topic, identity, reader, name=f"room:{self.spec.room}")
                case CommandReceived(identity=identity, payload=payload):
                    if self._data is not None:
                        self._data.command(identity, payload)
                case ChatReceived(identity=identity, text=text):
                    self._chat(identity, text)
                case DataRefused(topic=topic, identity=identity, item_id=item, reason=reason):
                    if self._data is not None:
                        self._data.refused(topic, identity, item, reason)
                case Disconnected(reason=reason) | StopRequested(reason=reason):
                    self.stop_reason = reason
                    return

    async def _start_voice(self, room: rtc.Room, tg: TaskGroup) -> None:
        if self._providers is None or not self._voice_settings.enabled:
            return
        self.voice = VoicePipeline(
            room,
            self._providers,
            self._voice_settings,
            self.voice_session,
            self.history,
            self.record_turn,
            self._clock,
            self._track_audio,
            seat=self.seat,
        )
        await self.voice.start(tg, self)
        people = [p for p in room.remote_participants.values() if not self._is_agent(p.identity)]
        for p in people:
            for pub in p.track_publications.values():
                if pub.track is not None and pub.kind == rtc.TrackKind.KIND_AUDIO:
                    self.voice.track_subscribed(p.identity, pub.sid, pub.track)
        if people:
            self._greet()

    def _greet(self) -> None:
        # Greet the first person who can hear it, once per session, and not on a resume. A
        # resumed conversation that ends with a user's turn lost its answer with the previous
        # actor (it died while answering): answer it now, once, instead.
        if self._greeted or self.voice is None or self._providers is None or self.seat is None:
            return
        self._greeted = True
        match self.seat.opening(self.history, bool(self._providers.greeting)):
            case "answer":
                self.voice.answer_history()
            case "greet":
                self.voice.say(self._providers.greeting)

    def _is_agent(self, identity: str) -> bool:
        return any(p.identity == identity for p in self._profiles.values())

    def _chat(self, identity: str, text: str) -> None:
        if self.voice is not None:
            self.voice.user_turn(identity, text)
        else:
            self.record_turn("user", text, identity, False, {})

    def record_turn(
        self,
        role: str,
        content: str,
        speaker: str | None,
        interrupted: bool,
        latency_ms: dict[str, float],
    ) -> None:
        """Add a turn to the shared history and persistence (a user's once per team)."""
        now, event_id = self._clock.now(), None
        if role == "user" and self.seat is not None:
            if not self.seat.heard(speaker or "", content, now):
                return
            event_id = self.seat.turn_id(self.conversation_id, speaker or "", content, now)
        elif role == "assistant" and speaker is None:
            speaker = self.spec.agent or None
        self.history.append(message := Message(role, content, now, speaker, interrupted))
        self._emit(
            TurnData(role, content, speaker, interrupted, latency_ms, self.session.user_id),
            ts=now,
            event_id=event_id,
        )
        if self.seat is not None:
            self.seat.recorded(message, event_id)

    # -- what data commands may do (DataHost) -------------------------------------------------

    def voice_session(self) -> SessionInfo:
        """The session as the voice sees it: operator's, room's, then the profile's settings."""
        s, p = self.session, self._profiles[self.spec.agent]
        return replace(
            s,
            instructions=self._instructions or s.instructions or p.instructions,
            voice=s.voice or p.voice,
            language=s.language or p.language,
        )

    def set_instructions(self, text: str) -> None:
        """An operator's ``instructions`` command: kept over the room metadata's from now on."""
        self._instructions = text

    def participant(self, identity: str) -> ParticipantState | None:
        return self.people.get(identity)

    def reset_history(self) -> None:
        self.history.clear()

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason
        try:
            self._inbox_send.send_nowait(StopRequested(reason))
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._stop.set()

    def emit(self, payload: Payload) -> None:
        self._emit(payload)

    async def _watch_stop(self, tg: TaskGroup) -> None:
        # A stop that could not be posted (full mailbox) still ends the actor.
        await self._stop.wait()
        with anyio.move_on_after(self._settings.close_timeout_s):
            await anyio.sleep_forever()
        self.stop_reason = self.stop_reason or "stop requested"
        tg.cancel_scope.cancel("stop requested and mailbox did not drain")

    def _participant_joined(self, m: ParticipantJoined) -> None:
        arrival = self.people.joined(m, self.session.user_id)
        if arrival is not None and (self.seat is None or self.seat.lead):
            self._emit(arrival, ts=m.at, event_id=self.people.event_id(m.identity, "joined"))

    def _participant_left(self, identity: str, reason: str, at: float) -> None:
        departure = self.people.left(identity, reason, at, self.session.user_id)
        self._admission.forget(identity)
        if departure is not None and (self.seat is None or self.seat.lead):
            self._emit(departure, ts=at, event_id=self.people.event_id(identity, "left", reason))

    def _metadata_changed(self, m: MetadataChanged) -> None:
        if not m.identity:
            if m.metadata is not None:
                self.session = parse_room_metadata(m.metadata)
            return
        self.people.changed(m)

    async def _shutdown(self, room: rtc.Room) -> None:
        """The last rung: record the session and leave, each under a deadline."""
        if self.lifecycle is RoomLifecycle.RUNNING:
            self.lifecycle = self.lifecycle.to(RoomLifecycle.DRAINING)
        if self.seat is not None:
            self.seat.leave()
        self._inbox_send.close()
        close_queued_readers(self._inbox)
        self._inbox.close()
        ended_at = self._clock.now()
        for identity, state in self.people.states.items():
            if state.left_at is None:
                self._participant_left(identity, "agent_left", ended_at)
        self._emit(self._session_summary(ended_at), ts=ended_at)
        with anyio.move_on_after(self._settings.close_timeout_s, shield=True) as scope:
            await room.disconnect()
        if scope.cancelled_caught:
            logger.warning("room disconnect timed out", extra=self._log_extra())
        self.lifecycle = self.lifecycle.to(RoomLifecycle.CLOSED)
        logger.info("room actor stopped", extra=self._log_extra())

    def _session_summary(self, ended_at: float) -> SessionData:
        messages = self.history.new_messages
        return SessionData(
            room=self.spec.room,
            conversation_id=self.conversation_id,
            user_id=self.session.user_id,
            started_at=self.started_at,
            ended_at=ended_at,
            duration_s=round(ended_at - self.started_at, 3),
            end_reason=self.stop_reason or "unknown",
            participants=[p.to_json() for p in self.people.states.values()],
            agent=self.spec.agent or None,
            agents=[] if self.seat is None else [n or "default" for n in self.seat.roster],
            message_count=len(messages),
            messages=[m.to_json() for m in messages],
        )

    def _emit(
        self, payload: Payload, *, ts: float | None = None, event_id: str | None = None
    ) -> None:
        at = self._clock.now() if ts is None else ts
        data = payload_json(payload)
        event = Event(
            payload.type, self.spec.room, self.conversation_id, data, at, event_id or new_event_id()
        )
        try:
            self._persistence.emit(event)
        except OutboxFullError:
            self._refused_events += 1
            # Once per power of two: the persistence actor reports the cause itself.
            if self._refused_events & (self._refused_events - 1) == 0:
                logger.error(
                    "persistence refused events",
                    extra={**self._log_extra(), "refused": self._refused_events},
                )

    def _log_extra(self) -> dict[str, Any]:
        return {
            "room": self.spec.room,
            "conversation_id": self.conversation_id,
            "state": self.lifecycle.value,
        }
