"""A wire-protocol fake of Deepgram's live transcription WebSocket (``/v1/listen``).

It speaks exactly what deepgram-sdk 7 sends and accepts (SDK-FACTS §3): binary linear16 audio
in; ``Results``, ``SpeechStarted``, ``UtteranceEnd``, ``Metadata`` and ``Error`` JSON out;
``KeepAlive``, ``Finalize`` and ``CloseStream`` text frames handled. Turn taking is driven by
the audio itself, measured in audio time (not wall time), so results are deterministic however
fast a test sends: a frame louder than ``energy_threshold`` is speech; ``endpointing`` ms of
quiet after speech ends the utterance with the next transcript of the script.

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
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ("DeepgramFake",)

_FRAME_S = 0.02


@dataclass
class _Utterance:
    speaking: bool = False
    started_at: float = 0.0
    quiet_s: float = 0.0
    interims: int = 0


@dataclass
class DeepgramFake:
    """Configure before (or between) connections; read the recorded traffic after."""

    api_key: str = "dg-test-key"
    transcripts: list[str] = field(default_factory=list)
    """Transcripts of successive utterances (consumed); when empty, ``default_transcript``."""
    default_transcript: str = "hello world"
    energy_threshold: float = 300.0
    """RMS (int16 units) above which a 20 ms frame counts as speech."""
    handshake_delay_s: float = 0.0
    fail_status: int | None = None
    error_after_s: float | None = None
    drop_after_s: float | None = None

    port: int = 0
    connections: int = 0
    queries: list[dict[str, str]] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    audio_bytes: int = 0
    keepalives: int = 0
    finalizes: int = 0
    close_streams: int = 0
    keepalive_seen: anyio.Event = field(default_factory=anyio.Event)

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
        if urlsplit(request.path).path != "/v1/listen":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid credentials\n")
        if self.fail_status is not None:
            return connection.respond(self.fail_status, "injected failure\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        query = dict(parse_qsl(urlsplit(ws.request.path if ws.request else "").query))
        self.queries.append(query)
        rate = int(query.get("sample_rate", "16000"))
        endpointing_s = int(query.get("endpointing", "10")) / 1000
        frame_bytes = int(rate * _FRAME_S) * 2
        audio_s = 0.0
        pending = b""
        utterance = _Utterance()
        try:
            async for message in ws:
                if isinstance(message, str):
                    kind = json.loads(message).get("type")
                    if kind == "KeepAlive":
                        self.keepalives += 1
                        self.keepalive_seen.set()
                    elif kind == "Finalize":
                        self.finalizes += 1
                        if utterance.speaking:
                            await self._final(ws, utterance, audio_s, from_finalize=True)
                            utterance = _Utterance()
                    elif kind == "CloseStream":
                        self.close_streams += 1
                        await ws.send(json.dumps(_metadata(audio_s)))
                        await ws.close()
                        return
                    continue
                self.audio_bytes += len(message)
                pending += message
                while len(pending) >= frame_bytes:
                    frame, pending = pending[:frame_bytes], pending[frame_bytes:]
                    audio_s += _FRAME_S
                    if self.drop_after_s is not None and audio_s >= self.drop_after_s:
                        ws.transport.abort()  # no close frame: the client sees a dropped link
                        return
                    if self.error_after_s is not None and audio_s >= self.error_after_s:
                        error = {"type": "Error", "variant": "Fake", "description": "injected"}
                        await ws.send(json.dumps(error))
                        await ws.close(1011, "injected error")
                        return
                    utterance = await self._on_frame(ws, utterance, frame, audio_s, endpointing_s)
        except ConnectionClosed:
            return

    async def _on_frame(
        self,
        ws: ServerConnection,
        utterance: _Utterance,
        frame: bytes,
        audio_s: float,
        endpointing_s: float,
    ) -> _Utterance:
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        loud = float(np.sqrt(np.mean(samples**2))) > self.energy_threshold
        if loud:
            if not utterance.speaking:
                utterance = _Utterance(speaking=True, started_at=audio_s - _FRAME_S)
                started = {"type": "SpeechStarted", "channel": [0], "timestamp": audio_s}
                await ws.send(json.dumps(started))
            utterance.quiet_s = 0.0
            # One interim per half second of speech, with the first words of the transcript.
            if int((audio_s - utterance.started_at) / 0.5) > utterance.interims:
                utterance.interims += 1
                words = self._peek().split()
                partial = " ".join(words[: max(1, len(words) * utterance.interims // 4)])
                await ws.send(json.dumps(_results(partial, utterance, audio_s, final=False)))
        elif utterance.speaking:
            utterance.quiet_s += _FRAME_S
            if utterance.quiet_s >= endpointing_s:
                await self._final(ws, utterance, audio_s, from_finalize=False)
                return _Utterance()
        return utterance

    async def _final(
        self, ws: ServerConnection, utterance: _Utterance, audio_s: float, *, from_finalize: bool
    ) -> None:
        text = self.transcripts.pop(0) if self.transcripts else self.default_transcript
        result = _results(text, utterance, audio_s, final=True, from_finalize=from_finalize)
        await ws.send(json.dumps(result))
        end = {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": audio_s}
        await ws.send(json.dumps(end))

    def _peek(self) -> str:
        return self.transcripts[0] if self.transcripts else self.default_transcript


def _results(
    text: str, utterance: _Utterance, audio_s: float, *, final: bool, from_finalize: bool = False
) -> dict[str, Any]:
    words = text.split()
    duration = max(audio_s - utterance.started_at, _FRAME_S)
    step = duration / max(1, len(words))
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": duration,
        "start": utterance.started_at,
        "is_final": final,
        "speech_final": final and not from_finalize,
        "from_finalize": from_finalize,
        "channel": {
            "alternatives": [
                {
                    "transcript": text,
                    "confidence": 0.99,
                    "words": [
                        {
                            "word": word.lower().strip(".,?!"),
                            "start": utterance.started_at + i * step,
                            "end": utterance.started_at + (i + 1) * step,
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
