"""The voice pipeline of one room: listen (per participant), think, speak (one reply at a time).

Audio in: an ``AudioStream`` per subscribed microphone feeds a bounded ring (oldest frames
dropped and counted) that feeds that participant's STT stream. A final transcript is a user
turn tagged with the speaker. A reply streams LLM deltas → sentences → TTS → one
``AudioSource``; the LLM keeps generating while TTS speaks the previous sentence. Barge-in
cancels the reply, clears queued audio and records only the text actually played; it takes
``min_interrupt_s`` of speech with ``min_interrupt_words`` real words in it, so a cough or an
"uh-huh" does not stop the agent (and a backchannel over the agent is not a turn to answer).
Speech over the agent first pauses it between two chunks (``ReplyHold``) while the words
decide; a false interruption resumes it where it stopped. The LLM may start on the
recogniser's likely-final words (PREFLIGHT, ``_preempt.py``) and is used if the FINAL agrees.

Each reply's ``latency_ms`` says where the turn's time went (README, "Turn-taking").

Everything here runs in the room actor's task group; the actor owns the state it touches.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup
from livekit import rtc

from actors._clock import Clock
from actors._exceptions import ProviderError
from actors._metrics import BARGE_INS, REPLIES, TURN_LATENCY
from actors.pipeline import ReplyHold, SentenceChunker, SpokenText, leading_silence_bytes
from actors.providers import SpeechEvent, SpeechEventKind
from actors.room._audio_out import AudioOut
from actors.room._captions import AgentCaption, Captions, UserCaption
from actors.room._listening import (
    Listeners,
    TrackAudio,
    barges_in,
    is_listening_noise,
    stt_latency,
    track_pcm,
)
from actors.room._ports import Providers, TurnRecorder
from actors.room._preempt import PendingPreemption, Preemption
from actors.room._settings import CLOSE_BOUND_S, VoiceSettings
from actors.room._state import ConversationHistory, SessionInfo
from actors.room._team import Seat, solo_seat
from actors.room._tool_calls import ToolCalls, ToolHost

__all__ = ("VoicePipeline",)

logger = logging.getLogger(__name__)

# Most of a TTS's padding dropped from the front of a reply (a voice that starts with a longer
# silence on purpose keeps the rest).
_LEAD_TRIM_MAX_S = 0.5
_APOLOGY_BOUND_S = 5.0  # a TTS that has not said the short apology in 5 s is failing too


@dataclass(slots=True)
class _Reply:
    id: str
    trigger_at: float | None
    hold: ReplyHold
    preempted: Preemption | None = None  # the LLM call started on the likely-final words
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    timeline: SpokenText = field(default_factory=SpokenText)
    started_at: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    recorded: bool = False
    captioned: bool = False
    lead_trimmed_s: float = 0.0
    done: anyio.Event = field(default_factory=anyio.Event)


class VoicePipeline:
    """Listens to every participant and answers one at a time.

    Args:
        room: the connected room.
        providers: STT, LLM and TTS.
        settings: the ``[voice]`` settings.
        session: reads the owner's per-room overrides (instructions, voice, language) as they
            are now; the pipeline keeps no copy, so a metadata change reaches the next reply.
        history: the conversation (read here; appended through ``record_turn``).
        record_turn: the actor's way of adding a turn to its history and persistence.
        clock: time source.
        track_audio: reads a subscribed track's frames (tests pass their own).
        seat: this agent's place in its room's team: who answers, the floor (None: alone).
    """

    def __init__(
        self,
        room: rtc.Room,
        providers: Providers,
        settings: VoiceSettings,
        session: Callable[[], SessionInfo],
        history: ConversationHistory,
        record_turn: TurnRecorder,
        clock: Clock,
        track_audio: TrackAudio = track_pcm,
        *,
        seat: Seat | None = None,
    ) -> None:
        self._room = room
        self._seat = seat or solo_seat()
        self._p = providers
        self._settings = settings
        self._session = session
        self._history = history
        self._record_turn = record_turn
        self._clock = clock
        self._listeners = Listeners(
            providers.stt,
            settings,
            lambda: self._session().language,
            self._on_speech,
            clock,
            track_audio,
        )
        self._audio = AudioOut(
            providers.tts.sample_rate,
            queue_ms=settings.audio_out_queue_ms,
            lead_ms=settings.audio_out_lead_ms,
            clock=clock,
        )
        self._captions: Captions | None = None
        self._tg: TaskGroup | None = None
        self._segments: dict[str, str] = {}
        self._reply: _Reply | None = None
        self._pending_trigger: tuple[float, dict[str, float]] | None = None
        self._preempts = PendingPreemption()
        self.muted = False
        self._tool_calls = ToolCalls(providers.tools, history, clock)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self, tg: TaskGroup, host: ToolHost | None = None) -> None:
        """Publish the agent's audio track (a listener has none) and start the captions in
        ``tg``; ``host``: for tools."""
        self._tg = tg
        self._tool_calls.bind(tg, host)
        self._listeners.start(tg)
        track_sid = await self._audio.publish(self._room) if self._seat.speaks else ""
        self._captions = Captions(self._room, agent_track_sid=track_sid)
        tg.start_soon(self._captions.run, name="captions")
        self._captions.set_state("listening")

    async def aclose(self) -> None:
        """Stop speaking (recording what was said) and stop listening."""
        self.interrupt(reason="room closing")
        self._listeners.close("room closing")
        if self._captions is not None:
            await self._captions.aclose()
        with anyio.move_on_after(CLOSE_BOUND_S, shield=True):
            await self._audio.aclose()

    @property
    def speaking(self) -> bool:
        return self._reply is not None

    def track_subscribed(self, identity: str, track_sid: str, track: rtc.Track) -> None:
        self._listeners.subscribed(identity, track_sid, track)

    def track_unsubscribed(self, track_sid: str) -> None:
        self._listeners.unsubscribed(track_sid)

    def _on_speech(self, identity: str, track_sid: str, event: SpeechEvent) -> None:
        kind = event.kind
        reply = self._reply
        speech = kind in (SpeechEventKind.START_OF_SPEECH, SpeechEventKind.INTERIM)
        if speech and reply is not None and self._tg is not None:
            if barges_in(event, self._settings):
                self.interrupt(reason="barge-in")
            elif kind is SpeechEventKind.START_OF_SPEECH and reply.hold.hold():
                # Quiet while the words decide; resumed if they were not an interruption.
                self._tg.start_soon(reply.hold.expire, name=f"hold:{reply.id}")
        elif kind is SpeechEventKind.END_OF_SPEECH and reply is not None:
            reply.hold.release()  # they stopped without a barge-in: a false interruption
        elif kind is SpeechEventKind.PREFLIGHT:
            self._preflight(identity, event.text.strip())
            return
        if kind not in (SpeechEventKind.INTERIM, SpeechEventKind.FINAL) or not event.text.strip():
            return
        final = kind is SpeechEventKind.FINAL
        segment = self._segments.setdefault(identity, "SG_" + uuid.uuid4().hex[:12])
        if final:
            del self._segments[identity]
            if self._reply is not None and is_listening_noise(event, self._settings):
                # "Uh-huh" over the agent: the caller is listening, not asking for an answer.
                logger.debug("backchannel", extra={"pii.text": event.text})
            else:
                logger.debug("user turn", extra={"pii.text": event.text, "pii.speaker": identity})
                # The reply is scheduled before the caption so that it runs first.
                self.user_turn(
                    identity,
                    event.text.strip(),
                    latency_ms=stt_latency(event),
                    preempted=self._preempts.take(identity, event.text),
                )
        if self._captions is not None:
            self._captions.post(UserCaption(identity, track_sid, segment, event.text, final))

    # -- turns --------------------------------------------------------------------------------

    def user_turn(
        self,
        speaker: str,
        text: str,
        *,
        latency_ms: dict[str, float] | None = None,
        preempted: Preemption | None = None,
    ) -> None:
        """A participant said or typed ``text``: record it and answer.

        Args:
            speaker: the participant's identity.
            text: what they said.
            latency_ms: the recogniser's stages of this turn (``end_of_turn``, ``stt_final``),
                carried into the reply's timings.
            preempted: the generation already started on these words, adopted by the reply.
        """
        trigger = self._clock.monotonic()
        if preempted is None:
            self._preempts.discard()  # its history no longer holds (a chat turn came between)
        self._record_turn("user", text, speaker, False, {})
        if not self._seat.answers(speaker, text):  # another agent's turn, or a listener's
            return  # (nothing was preempted: _preflight asked the same of the same words)
        if self._reply is not None:
            # Talking over the agent without a barge-in (too short): answer after this reply.
            if preempted is not None:
                preempted.cancel()
            self._pending_trigger = (trigger, dict(latency_ms or {}))
            return
        self._start_reply(trigger, latency_ms=latency_ms, preempted=preempted)

    def _preflight(self, speaker: str, text: str) -> None:
        """The recogniser's likely-final words: start the LLM on them while it finalises."""
        self._preempts.discard()
        if self._tg is None or self._reply is not None or not text:
            return
        if not self._seat.answers(speaker, text):
            return
        messages = self._tool_calls.history()
        instructions = self._session().instructions or self._p.instructions or None
        preempt = Preemption(speaker, text)
        preempt.start(self._tg, self._p.llm, messages, instructions, self._tool_calls.definitions())
        self._preempts.begin(preempt)

    def answer_history(self) -> None:
        """Answer the conversation as it stands (its last turn is a user's nobody answered)."""
        if self._reply is None:
            self._start_reply(self._clock.monotonic())

    def say(self, text: str) -> None:
        """Speak ``text`` as the agent (greeting, commands), after any current reply."""
        if self._tg is not None:
            self._tg.start_soon(self._say_after_current, text, name="say")

    async def _say_after_current(self, text: str) -> None:
        while self._reply is not None:
            await self._reply.done.wait()
        self._start_reply(None, fixed_text=text)

    def interrupt(self, *, reason: str) -> None:
        """Cut the current reply: clear queued audio, record only what was played."""
        reply = self._reply
        if reply is None:
            return
        played = max(0.0, reply.timeline.queued_s - self._audio.queued_s)
        self._audio.clear()
        reply.scope.cancel(reason)
        if reason == "barge-in":
            BARGE_INS.inc()
        self._finish(reply, reply.timeline.spoken(played), interrupted=True)

    def _start_reply(
        self,
        trigger_at: float | None,
        fixed_text: str | None = None,
        *,
        latency_ms: dict[str, float] | None = None,
        preempted: Preemption | None = None,
    ) -> None:
        if self._tg is None:
            if preempted is not None:
                preempted.cancel()
            return
        reply = _Reply(
            "RE_" + uuid.uuid4().hex[:12],
            trigger_at,
            ReplyHold(self._clock, self._settings.false_interruption_timeout_s),
            preempted,
            started_at=self._clock.monotonic(),
            latency_ms=dict(latency_ms or {}),
        )
        self._reply = reply
        self._tg.start_soon(self._run_reply, reply, fixed_text, name=f"reply:{reply.id}")

    async def _run_reply(self, reply: _Reply, fixed_text: str | None) -> None:
        captions = self._captions
        try:
            with reply.scope:
                if captions is not None:
                    captions.set_state("thinking")
                try:
                    await self._think_and_speak(reply, fixed_text)
                except ProviderError as exc:
                    REPLIES.labels(outcome="provider_error").inc()
                    logger.warning(
                        "reply failed; apologising",
                        extra={"vendor": exc.vendor, "error": type(exc).__name__},
                    )
                    await self._apologise(reply)
                await self._audio.wait_for_playout()
                self._finish(reply, reply.timeline.full_text, interrupted=False)
        finally:
            if not reply.recorded:  # cancelled from outside the actor (room closing)
                self._finish(reply, reply.timeline.full_text, interrupted=True)
            self._seat.release_floor(reply.id)
            reply.done.set()
            if self._reply is reply:
                self._reply = None
            if captions is not None:
                captions.post(AgentCaption(reply.id, "", final=True))
                captions.set_state("listening")
            if self._pending_trigger is not None and self._reply is None:
                (trigger, latency), self._pending_trigger = self._pending_trigger, None
                self._start_reply(trigger, latency_ms=latency)

    async def _think_and_speak(self, reply: _Reply, fixed_text: str | None) -> None:
        # One task, no hand-offs: each hop between tasks costs a trip through a busy event
        # loop, and TTS of the next sentence cannot start before this one is queued anyway
        # (AudioOut paces us in real time, a little ahead of playout).
        sentences = self._sentences(reply, fixed_text)
        try:
            async for sentence in sentences:
                await self._speak(reply, sentence)
        finally:
            await sentences.aclose()

    async def _sentences(self, reply: _Reply, fixed_text: str | None) -> AsyncGenerator[str]:
        chunker = SentenceChunker()
        if fixed_text is not None:
            for sentence in chunker.push(fixed_text) + chunker.flush():
                yield sentence
            return
        instructions = self._session().instructions or self._p.instructions
        deltas = self._tool_calls.stream(self._p.llm, instructions, reply.done, reply.preempted)
        try:
            async for delta in deltas:
                # "" is a reasoning model thinking (alive, nothing to say): not a first token.
                if delta and "llm_first_token" not in reply.latency_ms:
                    self._latency(reply, "llm_first_token", reply.started_at)
                for sentence in chunker.push(delta):
                    yield sentence
        finally:
            await deltas.aclose()
        for sentence in chunker.flush():
            yield sentence

    async def _speak(self, reply: _Reply, sentence: str) -> None:
        tts = self._p.tts
        chunk_bytes = tts.sample_rate * 2 * self._settings.audio_out_chunk_ms // 1000
        self._caption(reply, sentence)
        if self.muted:
            reply.timeline.add_audio(sentence, 0.0)
            return
        synth_started = self._clock.monotonic()
        buffer = b""
        audio = tts.synthesize(
            sentence, voice=self._session().voice, language=self._session().language
        )
        try:
            async for pcm in audio:
                if "tts_first_audio" not in reply.latency_ms:
                    self._latency(reply, "tts_first_audio", synth_started)
                buffer += pcm
                first = "agent_added" not in reply.latency_ms
                if first and reply.lead_trimmed_s < _LEAD_TRIM_MAX_S:
                    # The caller hears the first word, not the first frame: drop the padding.
                    budget = int((_LEAD_TRIM_MAX_S - reply.lead_trimmed_s) * tts.sample_rate) * 2
                    cut = min(leading_silence_bytes(buffer, tts.sample_rate), budget)
                    reply.lead_trimmed_s += cut / 2 / tts.sample_rate
                    buffer = buffer[cut:]
                while len(buffer) >= chunk_bytes or (first and len(buffer) >= 2):
                    cut = min(len(buffer) - len(buffer) % 2, chunk_bytes)
                    await self._capture(reply, sentence, buffer[:cut])
                    buffer, first = buffer[cut:], False
        finally:
            await audio.aclose()
        if len(buffer) >= 2:
            await self._capture(reply, sentence, buffer[: len(buffer) - len(buffer) % 2])

    async def _capture(self, reply: _Reply, sentence: str, pcm: bytes) -> None:
        await reply.hold.wait()
        await self._seat.take_floor(reply.id)  # one agent speaks at a time (at once if held)
        if self._captions is not None and self._captions.state != "speaking":
            self._captions.set_state("speaking")
        await self._audio.play(pcm)
        reply.timeline.add_audio(sentence, len(pcm) / 2 / self._audio.sample_rate)
        if "agent_added" not in reply.latency_ms and reply.trigger_at is not None:
            self._latency(reply, "agent_added", reply.trigger_at)
            stages = ("end_of_turn", "stt_final", "agent_added")
            if all(stage in reply.latency_ms for stage in stages):
                # As the agent sees it: from the last speech frame it heard, so without the
                # transport both ways and the caller's own buffering.
                total_ms = sum(reply.latency_ms[stage] for stage in stages)
                reply.latency_ms["voice_to_voice"] = round(total_ms, 3)
                TURN_LATENCY.labels(stage="voice_to_voice").observe(total_ms / 1000)

    async def _apologise(self, reply: _Reply) -> None:
        text = self._settings.apology
        self._caption(reply, text)
        try:
            with anyio.fail_after(_APOLOGY_BOUND_S):
                audio = self._p.tts.synthesize(text, voice=self._session().voice)
                try:
                    async for pcm in audio:
                        await self._capture(reply, text, pcm[: len(pcm) - len(pcm) % 2])
                finally:
                    await audio.aclose()
        except (ProviderError, TimeoutError):
            reply.timeline.add_audio(text, 0.0)  # captioned, at least

    def _caption(self, reply: _Reply, sentence: str) -> None:
        if self._captions is not None:
            delta = sentence if not reply.captioned else " " + sentence
            reply.captioned = True
            self._captions.post(AgentCaption(reply.id, delta))

    def _latency(self, reply: _Reply, stage: str, since: float) -> None:
        seconds = self._clock.monotonic() - since
        reply.latency_ms[stage] = round(seconds * 1000, 3)
        TURN_LATENCY.labels(stage=stage).observe(seconds)

    def _finish(self, reply: _Reply, text: str, *, interrupted: bool) -> None:
        if reply.recorded:
            return
        reply.recorded = True
        reply.hold.release(resume=False)
        if reply.preempted is not None:
            reply.preempted.cancel()
        if self._reply is reply:
            self._reply = None
        REPLIES.labels(outcome="interrupted" if interrupted else "complete").inc()
        if text or not interrupted:
            self._record_turn("assistant", text, None, interrupted, dict(reply.latency_ms))
