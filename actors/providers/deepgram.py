"""Deepgram live transcription over its WebSocket, through deepgram-sdk 7.

A stream is one ``/v1/listen`` socket. Its context manager owns two tasks in a task group: the
reader (Results, SpeechStarted, UtteranceEnd become ``SpeechEvent``s) and the keep-alive
(Deepgram closes a socket that hears nothing for 10 s, NET-0001). SDK and websockets
exceptions become ``ProviderError``s in one place, ``_deepgram_sdk.vendor_errors``. Transcripts
are logged only at DEBUG, under ``pii.*`` keys.

What Deepgram sends, as its docs define it: an utterance's transcript is every ``is_final``
segment up to the one marked ``speech_final`` (which may be empty), or up to ``UtteranceEnd``
when endpointing never fires; a result's ``duration`` spans the audio since the last final,
silence included, so how long someone has been talking comes from ``SpeechStarted.timestamp``
and the words' ``start``/``end``. A 4xx at the handshake is final (a language or model Deepgram
does not have is a 400): the stream is not reopened on it.

End of turn, ``turn_detection = "text"`` (the default), the same rule as the local recogniser:
Deepgram's ``endpointing`` is ``min_endpointing_ms``, and at its ``speech_final`` the words so
far are read (``actors.pipeline.likely_complete``). A complete turn ends there; one that ends
on a word a sentence does not end with ("send the report to …") is held: more words join it,
and it ends at the next complete ``speech_final``, at the ``UtteranceEnd`` (asked for at
``max_endpointing_ms`` of word gap, at least Deepgram's 1,000 ms), or, should that never come,
``max_endpointing_ms`` after the pause began by our own clock. A speaker who went on talking
after a turn was ended as complete gets that pause (plus a margin) before their next
complete-sounding turn ends (``learn_pauses``, ``actors.pipeline.PauseHabit``).
``turn_detection = "silence"``: every ``speech_final`` (after ``endpointing_ms``) ends the turn.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from deepgram import AsyncDeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v1 import (
    ListenV1Error,
    ListenV1Results,
    ListenV1ResultsChannelAlternativesItem,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)

from actors._exceptions import (
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
)
from actors.pipeline import PauseHabit, is_backchannel, likely_complete
from actors.providers._base import STT_SAMPLE_RATE, SpeechEvent, SpeechEventKind, SttStream
from actors.providers._deepgram_sdk import (
    HANDSHAKE_SETTINGS,
    VENDOR,
    deepgram_environment,
    vendor_errors,
)
from actors.providers._settings import SttSettings
from actors.providers._tasks import task_group

if TYPE_CHECKING:
    from deepgram.listen.v1.socket_client import AsyncV1SocketClient

__all__ = ("DeepgramStt",)

logger = logging.getLogger(__name__)

_EVENT_BUFFER = 256
_CLOSE_TIMEOUT_S = 2.0  # closing a socket never holds up the caller for longer than this
_MIN_UTTERANCE_END_MS = 1000  # Deepgram refuses a shorter utterance_end_ms


class DeepgramStt:
    """Deepgram streaming recognition; implements ``SttProvider``.

    Args:
        api_key: the Deepgram API key.
        model: e.g. ``nova-3``.
        language: default language (BCP-47).
        endpointing_ms: with ``turn_detection = "silence"``, the silence after which Deepgram
            marks ``speech_final`` (and the turn ends).
        utterance_end_ms: with ``turn_detection = "silence"``, the word gap after which
            Deepgram sends UtteranceEnd.
        turn_detection: ``text`` (a rule on the words at each pause) or ``silence``.
        min_endpointing_ms: ``text``: silence that ends a turn that reads complete.
        max_endpointing_ms: ``text``: silence that ends a turn that reads unfinished.
        learn_pauses: ``text``: a speaker who went on after a turn was ended as complete gets
            that pause before their next complete-sounding turn ends (``PauseHabit``).
        keepalive_s: a KeepAlive goes out when no audio was sent for this long.
        base_url: override of Deepgram's URL (``http://`` or ``ws://``), e.g. a local fake.
    """

    name = VENDOR

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "nova-3",
        language: str = "en-US",
        endpointing_ms: int = 500,
        utterance_end_ms: int = 1000,
        turn_detection: Literal["text", "silence"] = "text",
        min_endpointing_ms: int = 200,
        max_endpointing_ms: int = 2000,
        learn_pauses: bool = True,
        keepalive_s: float = 4.0,
        base_url: str | None = None,
    ) -> None:
        environment = (
            DeepgramClientEnvironment.PRODUCTION
            if base_url is None
            else deepgram_environment(base_url)
        )
        self._client = AsyncDeepgramClient(api_key=api_key, environment=environment)
        self._model = model
        self._language = language
        self._detect_turns = turn_detection == "text"
        if self._detect_turns:
            self._endpointing_ms = min_endpointing_ms
            self._utterance_end_ms = max(_MIN_UTTERANCE_END_MS, max_endpointing_ms)
            # speech_final comes after min_endpointing_ms of silence: the rest is ours to wait.
            self._hold_s = max(0, max_endpointing_ms - min_endpointing_ms) / 1000
        else:
            self._endpointing_ms = endpointing_ms
            self._utterance_end_ms = utterance_end_ms
            self._hold_s = 0.0
        self._keepalive_s = keepalive_s
        self._learn_pauses = learn_pauses

    @classmethod
    def from_settings(cls, settings: SttSettings, *, api_key: str) -> DeepgramStt:
        return cls(
            api_key=api_key,
            model=settings.deepgram_model,
            language=settings.language,
            endpointing_ms=settings.endpointing_ms,
            utterance_end_ms=settings.deepgram_utterance_end_ms,
            turn_detection=settings.turn_detection,
            min_endpointing_ms=settings.min_endpointing_ms,
            max_endpointing_ms=settings.max_endpointing_ms,
            learn_pauses=settings.learn_pauses,
            keepalive_s=settings.deepgram_keepalive_s,
            base_url=settings.deepgram_url,
        )

    @asynccontextmanager
    async def stream(self, *, language: str | None = None) -> AsyncIterator[SttStream]:
        """Open a ``/v1/listen`` socket and its reader and keep-alive tasks.

        Raises:
            ProviderStatusError: the handshake was refused (401 is not retryable).
            ProviderConnectionError: Deepgram is unreachable or dropped the socket.
        """
        connect = self._client.listen.v1.connect(
            model=self._model,
            encoding="linear16",
            sample_rate=STT_SAMPLE_RATE,
            channels=1,
            language=language or self._language,
            interim_results=True,
            endpointing=self._endpointing_ms,
            utterance_end_ms=self._utterance_end_ms,
            vad_events=True,
            smart_format=True,
        )
        # Entered by hand so that closing the socket can be bounded and shielded below.
        try:
            with vendor_errors("open a stream"):
                socket = await connect.__aenter__()
        except ProviderStatusError as exc:
            if not exc.retryable:
                # Reopening cannot help: say once, loudly, which setting to fix.
                logger.error(
                    "deepgram refused the stream for good; fix the setting named",
                    extra={
                        "status": exc.status,
                        "setting": HANDSHAKE_SETTINGS.get(exc.status, "[stt]"),
                        "language": language or self._language,
                        "model": self._model,
                    },
                )
            raise
        try:
            events_send, events_receive = anyio.create_memory_object_stream[SpeechEvent](
                _EVENT_BUFFER
            )
            stream = _DeepgramStream(
                socket,
                events_send,
                events_receive,
                self._keepalive_s,
                _Endpointing(
                    self._detect_turns,
                    self._endpointing_ms / 1000,
                    self._hold_s,
                    self._learn_pauses,
                ),
            )
            # Both ends closed here too: a reader cancelled before it ran never closes its end.
            async with task_group() as tg, events_receive, events_send:
                tg.start_soon(stream.read, name="stt:deepgram:read")
                tg.start_soon(stream.keep_alive, name="stt:deepgram:keepalive")
                if self._detect_turns:
                    tg.start_soon(stream.expire_holds, name="stt:deepgram:hold")
                try:
                    yield stream
                finally:
                    tg.cancel_scope.cancel()
        finally:
            with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
                try:
                    await connect.__aexit__(None, None, None)
                except Exception:
                    # The socket is gone either way; a failed close handshake changes nothing.
                    logger.debug("deepgram socket close failed", exc_info=True)

    async def aclose(self) -> None:
        """Nothing to release: each stream owns its socket."""


@dataclass(frozen=True, slots=True)
class _Endpointing:
    detect_turns: bool
    endpointing_s: float  # the silence Deepgram waits before speech_final
    hold_s: float  # how much longer an unfinished-sounding turn waits for more words
    learn_pauses: bool  # a complete-sounding turn waits longer for a speaker who pauses


class _DeepgramStream:
    """One socket: ``send()`` from the caller, results from the reader task; an unfinished
    turn's deadline from the hold task."""

    def __init__(
        self,
        socket: AsyncV1SocketClient,
        events_send: ObjectSendStream[SpeechEvent],
        events_receive: ObjectReceiveStream[SpeechEvent],
        keepalive_s: float,
        endpointing: _Endpointing,
    ) -> None:
        self._socket = socket
        self._events_send = events_send
        self._events_receive = events_receive
        self._keepalive_s = keepalive_s
        self._endpointing = endpointing
        self._last_sent = anyio.current_time()
        self._final_parts: list[str] = []
        self._speech_start: float | None = None  # audio time the current speech run began
        self._paused_at: float | None = None  # when an unfinished turn's speech_final came
        self._held = anyio.Event()  # set while a turn is held
        self._hold_s = endpointing.hold_s  # how long the current hold lasts
        self._hold_complete = False  # the held turn reads complete (held for the speaker)
        self._habit = (
            PauseHabit(endpointing.endpointing_s, endpointing.endpointing_s + endpointing.hold_s)
            if endpointing.detect_turns and endpointing.learn_pauses
            else None
        )
        self._last_word_end: float | None = None  # audio time, of the last final word
        self._ended_at: float | None = None  # audio time a turn ended as complete was last heard
        self._resumed_s: float | None = None  # the current turn went on this long after one
        self._stopped = False  # END_OF_SPEECH sent for the words so far
        self._ended = False

    async def send(self, pcm: bytes) -> None:
        """Send 16 kHz mono int16 audio as one binary frame."""
        if self._ended:
            raise RuntimeError("SttStream.send() called after end_input()")
        with vendor_errors("send audio"):
            await self._socket.send_media(pcm)
        self._last_sent = anyio.current_time()

    async def end_input(self) -> None:
        """Finalize and close: Deepgram sends its last results, then closes the socket."""
        if self._ended:
            return
        self._ended = True
        with vendor_errors("finish the stream"):
            await self._socket.send_finalize()
            await self._socket.send_close_stream()

    def events(self) -> AsyncIterator[SpeechEvent]:
        return self._events_receive

    async def read(self) -> None:
        """The reader task: every message in, ``SpeechEvent``s out, until the socket closes."""
        async with self._events_send:
            with vendor_errors("read results"):
                async for message in self._socket:
                    await self._on_message(message)
            await self._flush_final()
            if not self._ended:
                raise ProviderConnectionError(
                    "deepgram closed the stream before it was finished", vendor=VENDOR
                )

    async def keep_alive(self) -> None:
        """The keep-alive task: a KeepAlive text frame whenever audio has paused."""
        while not self._ended:
            idle = anyio.current_time() - self._last_sent
            if idle < self._keepalive_s:
                await anyio.sleep(self._keepalive_s - idle)
                continue
            with vendor_errors("send a keep-alive"):
                await self._socket.send_keep_alive()
            self._last_sent = anyio.current_time()

    async def expire_holds(self) -> None:
        """The hold task: ends a held turn when no words came for ``max_endpointing_ms``, should
        the UtteranceEnd (which normally ends it first, on the audio's clock) never come."""
        while True:
            await self._held.wait()
            paused_at = self._paused_at
            if paused_at is None:  # words came: the turn goes on
                self._held = anyio.Event()
                continue
            await anyio.sleep_until(paused_at + self._hold_s)
            if self._paused_at == paused_at:
                await self._end_turn(complete=self._hold_complete)

    def _hold(self, seconds: float, *, complete: bool) -> None:
        self._paused_at = anyio.current_time()
        self._hold_s, self._hold_complete = seconds, complete
        self._held.set()

    def _habit_extra_s(self) -> float:
        """Beyond Deepgram's endpointing, how long this speaker's complete turns wait."""
        if self._habit is None:
            return 0.0
        return self._habit.wait_s - self._endpointing.endpointing_s

    def _spoke_at(self, start: float) -> None:
        """Speech began at audio time ``start``: did it go on from a turn ended as complete?
        Learnt at the turn's FINAL, unless it is only a backchannel ("uh-huh")."""
        if self._ended_at is not None:
            self._resumed_s = start - self._ended_at
        self._ended_at = None

    async def _end_turn(self, *, complete: bool = False) -> None:
        """The turn ended at a pause: its FINAL, and END_OF_SPEECH at once, not at the
        UtteranceEnd ``max_endpointing_ms`` later (an agent paused by an "uh-huh" resumes now)."""
        if complete:
            self._ended_at = self._last_word_end
        await self._flush_final(timed=True)
        if not self._stopped:
            self._stopped = True
            await self._emit(SpeechEvent(SpeechEventKind.END_OF_SPEECH))

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, ListenV1Results):
            alternatives = message.channel.alternatives
            text = alternatives[0].transcript.strip() if alternatives else ""
            spoken = self._speech_s(alternatives[0], message) if alternatives and text else 0.0
            if text:
                self._paused_at = None  # more words: a held turn goes on
                self._stopped = False
            if not message.is_final:
                if text:
                    interim = " ".join([*self._final_parts, text])
                    await self._emit(SpeechEvent(SpeechEventKind.INTERIM, interim, spoken))
                return
            if text:
                self._final_parts.append(text)
                words = alternatives[0].words
                if words:
                    self._last_word_end = words[-1].end
            if message.from_finalize:
                await self._flush_final()
            elif message.speech_final:
                detect = self._endpointing.detect_turns
                if not detect:
                    await self._flush_final(timed=True)
                elif self._final_parts and not likely_complete(self._text()):
                    self._hold(self._endpointing.hold_s, complete=False)  # "the report to …"
                elif (extra := self._habit_extra_s()) > 0:
                    # This speaker has gone on after such a pause before: give them theirs.
                    self._hold(extra, complete=True)
                else:
                    await self._end_turn(complete=True)
        elif isinstance(message, ListenV1SpeechStarted):
            # Each run of speech after a pause starts here: barge-in measures from it.
            self._speech_start = message.timestamp
            self._spoke_at(message.timestamp)
            await self._emit(SpeechEvent(SpeechEventKind.START_OF_SPEECH))
        elif isinstance(message, ListenV1UtteranceEnd):
            await self._flush_final()
            if not self._stopped:  # said at the turn's end already (text detection)
                await self._emit(SpeechEvent(SpeechEventKind.END_OF_SPEECH))
            self._stopped = False
        elif isinstance(message, ListenV1Error):
            logger.debug("deepgram error message", extra={"pii.description": message.description})
            raise ProviderError(
                f"deepgram reported an error ({message.variant})", vendor=VENDOR, retryable=True
            )

    def _speech_s(
        self, alternative: ListenV1ResultsChannelAlternativesItem, message: ListenV1Results
    ) -> float:
        """How long the speaker has been talking, by the words' own times.

        Not ``message.duration``: that spans everything since the last final result, silence
        included (a "yeah" after 3 s of silence would count as 3.5 s of speech).
        """
        words = alternative.words
        if self._speech_start is None and words:
            self._speech_start = words[0].start  # no SpeechStarted (vad_events off, or lost)
            self._spoke_at(words[0].start)
        end = words[-1].end if words else message.start + message.duration
        return max(0.0, end - self._speech_start) if self._speech_start is not None else 0.0

    def _text(self) -> str:
        return " ".join(self._final_parts)

    async def _flush_final(self, *, timed: bool = False) -> None:
        """End the turn; ``timed``: at a pause Deepgram measured (so its length is known)."""
        self._speech_start = None
        paused_at, self._paused_at = self._paused_at, None
        if self._final_parts:
            text = self._text()
            self._final_parts = []
            logger.debug("deepgram final transcript", extra={"pii.text": text})
            resumed_s, self._resumed_s = self._resumed_s, None
            if self._habit is not None and resumed_s is not None and not is_backchannel(text):
                self._habit.spoke_again(resumed_s)
            end_of_turn_ms = None
            if timed or paused_at is not None:
                # From the last word to this decision: Deepgram's endpointing, and any hold.
                held_s = anyio.current_time() - paused_at if paused_at is not None else 0.0
                end_of_turn_ms = round((self._endpointing.endpointing_s + held_s) * 1000, 1)
            await self._emit(
                SpeechEvent(SpeechEventKind.FINAL, text, end_of_turn_ms=end_of_turn_ms)
            )

    async def _emit(self, event: SpeechEvent) -> None:
        await self._events_send.send(event)
