"""A wire-protocol fake of Deepgram's live transcription WebSocket (``/v1/listen``).

It speaks exactly what deepgram-sdk 7 sends and accepts (SDK-FACTS §3): binary linear16 audio
in; ``Results``, ``SpeechStarted``, ``UtteranceEnd``, ``Metadata`` and ``Error`` JSON out;
``KeepAlive``, ``Finalize`` and ``CloseStream`` text frames handled. Turn taking is driven by
the audio itself, measured in audio time (not wall time), so results are deterministic however
fast a test sends: a frame louder than ``energy_threshold`` is speech; ``endpointing`` ms of
quiet after speech ends the utterance with the next transcript of the script.

How the real service behaves, and the knob that switches each behaviour (defaults imitate the
service; the documents are Deepgram's developer docs, pages named):

- ``duration_covers_silence`` ("Understanding start, duration and is_final"; "Interim
  Results"): a result's ``start``/``duration`` span the audio since the last *final* result,
  silence included, not the speech; words carry their own ``start``/``end``. False: the span of
  the speech only (what this fake used to send).
- ``segment_s`` ("Using is_final and speech_final"; "Endpointing"): during continuous speech the
  service finalises segments on its own (``is_final`` true, ``speech_final`` false), and the
  transcript of an utterance is the concatenation of every ``is_final`` segment up to the one
  with ``speech_final``. A segment is finalised every ``segment_s`` of speech (the service does
  it every few seconds; shorter here so short test utterances show it). None: one final.
- ``empty_speech_final`` (same pages): the words all come in ``is_final`` segments and the
  ``speech_final`` result that follows has an empty transcript.
- ``speech_final`` ("Utterance End": "speech_final may never come in noisy audio, which is why
  UtteranceEnd exists"): False, endpointing never fires; segments are final but never
  ``speech_final`` and only ``UtteranceEnd`` ends the utterance.
- ``utterance_end`` ("Utterance End"): ``UtteranceEnd`` comes once ``utterance_end_ms`` (query
  parameter) of audio passed since the last word's end, with no word in between; so it comes
  late, after the ``speech_final``, or not at all when the speaker goes on. False: never.
- ``silence_results_s`` ("Interim Results"): while nobody speaks the service still finalises
  empty results now and then, which move the span of the next result on. None: never.
- ``idle_timeout_s`` ("Recovering from connection errors and timeouts when live streaming";
  "KeepAlive"): a stream that receives no audio and no text message (KeepAlive) for 10 s of wall
  time is closed with code 1011 and the reason ``NET-0001``.
- ``languages``/``models`` ("Models & Languages Overview"; "Recovering from connection
  errors": the handshake is refused with HTTP 400 and a ``dg-error`` header): a language or
  model the service does not have refuses the handshake, which the SDK raises as
  ``ApiError(status_code=400)``.

Faults: ``fail_status`` rejects the handshake, ``handshake_delay_s`` slows it, ``error_after_s``
sends an Error message and closes, ``drop_after_s`` cuts the TCP connection without a close
frame, all after that much audio.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ("NET_0001", "DeepgramFake")

_FRAME_S = 0.02
NET_0001 = (
    "Deepgram did not receive audio data or a text message within the timeout window. "
    "See https://dpgr.am/net0001"
)
# A subset of what nova-3 and nova-2 transcribe ("Models & Languages Overview").
LANGUAGES = frozenset(
    {
        "multi", "en", "en-US", "en-GB", "en-AU", "en-IN", "en-NZ", "es", "es-419", "fr",
        "fr-CA", "de", "nl", "it", "pt", "pt-BR", "ja", "ko", "hi", "ru", "sv", "da", "tr",
    }
)  # fmt: skip
MODELS = frozenset({"nova-3", "nova-2", "nova-3-general", "nova-2-general", "enhanced", "base"})


@dataclass
class _Stream:
    """What one socket has heard so far, in audio seconds."""

    endpointing_s: float
    utterance_end_s: float
    audio_s: float = 0.0
    segment_start: float = 0.0  # end of the last final result: where the next span begins
    speaking: bool = False
    speech_start: float = 0.0  # of the current utterance
    run_start: float = 0.0  # of the speech since the last final segment
    last_loud: float = 0.0
    quiet_s: float = 0.0
    interims: int = 0
    segment_interims: int = 0  # interims sent before the current segment began
    segments: int = 0
    words: list[str] = field(default_factory=list)  # of the utterance, not yet finalised
    has_words: bool = False
    last_word_end: float | None = None  # pending UtteranceEnd


@dataclass
class DeepgramFake:
    """Configure before (or between) connections; read the recorded traffic after."""

    api_key: str = "dg-test-key"
    transcripts: list[str] = field(default_factory=list)
    """Transcripts of successive utterances (consumed); when empty, ``default_transcript``."""
    default_transcript: str = "hello world"
    energy_threshold: float = 300.0
    """RMS (int16 units) above which a 20 ms frame counts as speech."""
    interim_s: float = 0.25
    """An interim result every this much speech."""
    duration_covers_silence: bool = True
    segment_s: float | None = 0.5
    empty_speech_final: bool = False
    speech_final: bool = True
    utterance_end: bool = True
    silence_results_s: float | None = 3.0
    idle_timeout_s: float = 10.0
    languages: frozenset[str] = LANGUAGES
    models: frozenset[str] = MODELS

    handshake_delay_s: float = 0.0
    fail_status: int | None = None
    error_after_s: float | None = None
    drop_after_s: float | None = None

    port: int = 0
    connections: int = 0
    queries: list[dict[str, str]] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    """The ``dg-error`` of every handshake refused for its parameters."""
    audio_bytes: int = 0
    keepalives: int = 0
    finalizes: int = 0
    close_streams: int = 0
    idle_closes: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    """Every JSON message sent to a client, in order."""
    keepalive_seen: anyio.Event = field(default_factory=anyio.Event)
    idle_closed: anyio.Event = field(default_factory=anyio.Event)

    @property
    def url(self) -> str:
        """Base URL to give ``DeepgramStt(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}"

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[DeepgramFake]:
        async with serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._check,
            compression=None,
            # Unbounded, so a handler that stops reading (after an injected error) never
            # stalls the close handshake behind unread audio.
            max_queue=None,
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            yield self

    async def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.handshake_delay_s:
            await anyio.sleep(self.handshake_delay_s)  # simulated network latency
        self.auth_headers.append(request.headers.get("Authorization", ""))
        url = urlsplit(request.path)
        if url.path != "/v1/listen":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid credentials\n")
        if self.fail_status is not None:
            return connection.respond(self.fail_status, "injected failure\n")
        query = dict(parse_qsl(url.query))
        if query.get("model") not in self.models or query.get("language", "en") not in (
            self.languages
        ):
            return self._bad_request(
                connection,
                "No such model/language/tier combination found. "
                "Use the /v1/models endpoint to see available models.",
            )
        return None

    def _bad_request(self, connection: ServerConnection, reason: str) -> Response:
        self.refusals.append(reason)
        body = {"err_code": "Bad Request", "err_msg": reason, "request_id": "fake-request"}
        response = connection.respond(HTTPStatus.BAD_REQUEST, json.dumps(body))
        response.headers = Headers(
            [*response.headers.raw_items(), ("dg-error", reason), ("dg-request-id", "fake")]
        )
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        query = dict(parse_qsl(urlsplit(ws.request.path if ws.request else "").query))
        self.queries.append(query)
        stream = _Stream(
            endpointing_s=int(query.get("endpointing", "10")) / 1000,
            utterance_end_s=int(query.get("utterance_end_ms", "1000")) / 1000,
        )
        heard = [anyio.Event()]  # set by every message; the idle close waits on it
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._idle_watch, ws, heard)
                await self._serve_stream(ws, stream, query, heard)
                tg.cancel_scope.cancel()
        except* ConnectionClosed:
            pass  # the client went away (or the idle close above): nothing left to serve

    async def _idle_watch(self, ws: ServerConnection, heard: list[anyio.Event]) -> None:
        while True:
            with anyio.move_on_after(self.idle_timeout_s) as quiet:
                await heard[0].wait()
            if quiet.cancelled_caught:
                break
            heard[0] = anyio.Event()
        self.idle_closes += 1
        self.idle_closed.set()
        await ws.close(1011, NET_0001)

    async def _serve_stream(
        self,
        ws: ServerConnection,
        stream: _Stream,
        query: dict[str, str],
        heard: list[anyio.Event],
    ) -> None:
        rate = int(query.get("sample_rate", "16000"))
        frame_bytes = int(rate * _FRAME_S) * 2
        pending = b""
        async for message in ws:
            heard[0].set()
            if isinstance(message, str):
                kind = json.loads(message).get("type")
                if kind == "KeepAlive":
                    self.keepalives += 1
                    self.keepalive_seen.set()
                    self.keepalive_seen = anyio.Event()  # the next one, for the next waiter
                elif kind == "Finalize":
                    self.finalizes += 1
                    await self._finalize(ws, stream)
                elif kind == "CloseStream":
                    self.close_streams += 1
                    await self._send(ws, (_metadata(stream.audio_s)))
                    await ws.close()
                    return
                continue
            self.audio_bytes += len(message)
            pending += message
            while len(pending) >= frame_bytes:
                frame, pending = pending[:frame_bytes], pending[frame_bytes:]
                stream.audio_s += _FRAME_S
                if self.drop_after_s is not None and stream.audio_s >= self.drop_after_s:
                    ws.transport.abort()  # no close frame: the client sees a dropped link
                    return
                if self.error_after_s is not None and stream.audio_s >= self.error_after_s:
                    error = {"type": "Error", "variant": "Fake", "description": "injected"}
                    await self._send(ws, (error))
                    await ws.close(1011, "injected error")
                    return
                await self._on_frame(ws, stream, frame)

    async def _on_frame(self, ws: ServerConnection, s: _Stream, frame: bytes) -> None:
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        loud = float(np.sqrt(np.mean(samples**2))) > self.energy_threshold
        now = s.audio_s
        if loud:
            if not s.speaking:
                s.speaking, s.speech_start, s.run_start = True, now - _FRAME_S, now - _FRAME_S
                s.interims, s.segment_interims, s.segments, s.quiet_s = 0, 0, 0, 0.0
                s.last_word_end = None  # the speaker went on: no UtteranceEnd for that gap
                if not s.words:
                    s.words, s.has_words = self._next_transcript().split(), False
                started = {"type": "SpeechStarted", "channel": [0], "timestamp": s.speech_start}
                await self._send(ws, (started))
            s.quiet_s, s.last_loud = 0.0, now
            spoken = now - s.speech_start
            if self.segment_s and int(spoken / self.segment_s) > s.segments:
                s.segments += 1
                if len(s.words) >= 2:
                    await self._send_final(ws, s, s.words[: (len(s.words) + 1) // 2])
                    return
            if int(spoken / self.interim_s) > s.interims:
                s.interims += 1
                shown = s.words[: max(1, min(len(s.words), s.interims - s.segment_interims))]
                await self._send(ws, (self._results(s, shown, final=False)))
            return
        if s.speaking:
            s.quiet_s += _FRAME_S
            if s.quiet_s >= s.endpointing_s:
                await self._end_utterance(ws, s)
            return
        if s.last_word_end is not None and now - s.last_word_end >= s.utterance_end_s:
            end = {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": s.last_word_end}
            s.last_word_end = None
            await self._send(ws, (end))
        elif self.silence_results_s and now - s.segment_start >= self.silence_results_s:
            await self._send_final(ws, s, [])

    async def _end_utterance(self, ws: ServerConnection, s: _Stream) -> None:
        s.speaking = False
        if not self.speech_final:
            await self._send_final(ws, s, s.words)
        elif self.empty_speech_final:
            if s.words:
                await self._send_final(ws, s, s.words)
            await self._send_final(ws, s, [], speech_final=True)
        else:
            await self._send_final(ws, s, s.words, speech_final=True)
        if self.utterance_end and s.has_words:
            s.last_word_end = s.last_loud
        s.has_words = False

    async def _finalize(self, ws: ServerConnection, s: _Stream) -> None:
        # Finalize flushes whatever was heard, as a final result marked from_finalize.
        s.speaking = False
        await self._send_final(ws, s, s.words, from_finalize=True)
        s.has_words, s.last_word_end = False, None

    async def _send_final(
        self,
        ws: ServerConnection,
        s: _Stream,
        words: list[str],
        *,
        speech_final: bool = False,
        from_finalize: bool = False,
    ) -> None:
        result = self._results(s, words, final=True, speech_final=speech_final)
        result["from_finalize"] = from_finalize
        await self._send(ws, (result))
        s.words = s.words[len(words) :]
        s.has_words = s.has_words or bool(words)
        s.segment_start = s.audio_s
        s.run_start = s.audio_s
        s.segment_interims = s.interims

    def _results(
        self, s: _Stream, words: list[str], *, final: bool, speech_final: bool = False
    ) -> dict[str, Any]:
        # Words spread over the speech this result covers.
        first = max(s.run_start, s.speech_start)
        last = max(s.last_loud, first + _FRAME_S)
        step = (last - first) / max(1, len(words))
        if self.duration_covers_silence:
            start, duration = s.segment_start, s.audio_s - s.segment_start
        else:
            start, duration = s.speech_start, max(s.audio_s - s.speech_start, _FRAME_S)
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(duration, 3),
            "start": round(start, 3),
            "is_final": final,
            "speech_final": speech_final,
            "from_finalize": False,
            "channel": {
                "alternatives": [
                    {
                        "transcript": " ".join(words),
                        "confidence": 0.99 if words else 0.0,
                        "words": [
                            {
                                "word": word.lower().strip(".,?!"),
                                "start": round(first + i * step, 3),
                                "end": round(first + (i + 1) * step, 3),
                                "confidence": 0.99,
                                "punctuated_word": word,
                            }
                            for i, word in enumerate(words)
                        ],
                    }
                ]
            },
            "metadata": {
                "request_id": "fake-request",
                "model_info": {"name": "general-nova-3", "version": "fake", "arch": "nova-3"},
                "model_uuid": "fake-model",
            },
        }

    async def _send(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        self.sent.append(message)
        await ws.send(json.dumps(message))

    def _next_transcript(self) -> str:
        return self.transcripts.pop(0) if self.transcripts else self.default_transcript


def _metadata(audio_s: float) -> dict[str, Any]:
    return {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": "fake-request",
        "sha256": "00",
        "created": "2026-01-01T00:00:00.000Z",
        "duration": audio_s,
        "channels": 1,
    }
