"""A wire-protocol fake of Cartesia's TTS WebSocket (``/tts/websocket``).

It speaks what the cartesia SDK 4 sends and accepts (SDK-FACTS §5): generation requests per
``context_id`` (``continue`` true while more text follows), ``{"cancel": true}``; ``chunk``
messages with base64 ``pcm_s16le`` at the requested rate, then ``done``; ``error`` messages.
The audio is a tone (or silence with ``tone_hz=0``) lasting ``seconds_per_char`` per character
of the transcript, so a test can check the length of what it got.

How the real service behaves, and the knob for each (Cartesia's docs, pages named):

- ``error_without_context`` (API reference, "TTS WebSocket": the error event's ``context_id``
  is set only "when available"): errors come without ``context_id``.
- ``max_contexts`` ("Concurrency limits": the free and pro plans allow 2 and 3 concurrent
  generations): a context opened while that many are speaking, on any socket of this key, is
  refused with a 429 error event that carries no ``context_id`` (``concurrency_limited``).
- ``idle_timeout_s`` ("TTS WebSocket": connections idle for 5 minutes are closed): a socket that
  receives nothing for that long (wall time) is closed normally (code 1000).

Faults: ``fail_status`` rejects the handshake; ``first_chunk_delay_s`` and ``chunk_delay_s``
slow a context; ``error_status`` answers each context with an error; ``drop_after_chunks`` cuts
the TCP connection without a close frame after that many chunks on one socket.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import anyio
import numpy as np
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ("CartesiaFake",)


@dataclass
class _Context:
    send: MemoryObjectSendStream[tuple[str, bool]]
    receive: MemoryObjectReceiveStream[tuple[str, bool]]
    scope: anyio.CancelScope


@dataclass
class _Socket:
    ws: ServerConnection
    chunks: int = 0


@dataclass
class CartesiaFake:
    """Configure before a request; read the recorded traffic after."""

    api_key: str = "ct-test"
    seconds_per_char: float = 0.05
    chunk_s: float = 0.1
    tone_hz: float = 440.0
    fail_status: int | None = None
    first_chunk_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    error_status: int | None = None
    drop_after_chunks: int | None = None
    error_without_context: bool = False
    max_contexts: int | None = None
    idle_timeout_s: float = 300.0

    port: int = 0
    connections: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    cancel_seen: anyio.Event = field(default_factory=anyio.Event)
    idle_closes: int = 0
    idle_closed: anyio.Event = field(default_factory=anyio.Event)
    speaking: int = 0
    """Contexts generating now, on every socket."""
    _live: set[ServerConnection] = field(default_factory=set)

    @property
    def url(self) -> str:
        """Base URL to give ``CartesiaTts(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}"

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[CartesiaFake]:
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

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.auth_headers.append(request.headers.get("Authorization", ""))
        if request.path.split("?")[0] != "/tts/websocket":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid api key\n")
        if self.fail_status is not None:
            return connection.respond(self.fail_status, "injected failure\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        self._live.add(ws)
        socket = _Socket(ws)
        contexts: dict[str, _Context] = {}
        heard = [anyio.Event()]  # set by every message; the idle close waits on it
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._idle_watch, ws, heard)
                async for raw in ws:
                    heard[0].set()
                    message = json.loads(raw)
                    context_id = message.get("context_id", "")
                    if message.get("cancel"):
                        self.cancels.append(context_id)
                        self.cancel_seen.set()
                        if (context := contexts.pop(context_id, None)) is not None:
                            context.send.close()
                            context.scope.cancel()
                        continue
                    self.requests.append(message)
                    context = contexts.get(context_id)
                    if context is None:
                        context = await self._open(tg, socket, message)
                        contexts[context_id] = context
                    last = not message.get("continue", False)
                    await context.send.send((message.get("transcript", ""), last))
                    if last:
                        contexts.pop(context_id).send.close()
                for context in contexts.values():
                    context.send.close()
                tg.cancel_scope.cancel()
        except* ConnectionClosed:
            pass  # the client went away mid-message: nothing left to serve
        finally:
            for context in contexts.values():
                context.send.close()
                context.receive.close()  # a context cancelled before it spoke never closes it
            self._live.discard(ws)

    async def _idle_watch(self, ws: ServerConnection, heard: list[anyio.Event]) -> None:
        while True:
            with anyio.move_on_after(self.idle_timeout_s) as quiet:
                await heard[0].wait()
            if quiet.cancelled_caught:
                break
            heard[0] = anyio.Event()
        self.idle_closes += 1
        self.idle_closed.set()
        await ws.close()  # 1000: a clean close, as Cartesia closes idle sockets

    async def disconnect_all(self) -> None:
        """Close every open socket normally (as Cartesia does with idle ones)."""
        for ws in list(self._live):
            await ws.close()

    async def _open(self, tg: TaskGroup, socket: _Socket, message: dict[str, Any]) -> _Context:
        send, receive = anyio.create_memory_object_stream[tuple[str, bool]](64)
        scope = anyio.CancelScope()
        tg.start_soon(self._speak, socket, message, receive, scope)
        return _Context(send, receive, scope)

    async def _speak(
        self,
        socket: _Socket,
        first: dict[str, Any],
        texts: MemoryObjectReceiveStream[tuple[str, bool]],
        scope: anyio.CancelScope,
    ) -> None:
        context_id = first["context_id"]
        output = first.get("output_format", {})
        with scope, texts:
            if self.max_contexts is not None and self.speaking >= self.max_contexts:
                error = {
                    "type": "error",
                    "done": True,
                    "status_code": 429,
                    "error_code": "concurrency_limited",
                    "title": "Concurrency limit exceeded",
                    "message": "Too many concurrent requests for your plan.",
                }
                await socket.ws.send(json.dumps(error))
                return
            if self.error_status is not None or output.get("encoding") != "pcm_s16le":
                status = self.error_status or 400
                error = {
                    "type": "error",
                    "context_id": context_id,
                    "done": True,
                    "status_code": status,
                    "title": "Fake error",
                    "message": "injected",
                }
                if self.error_without_context:
                    del error["context_id"]
                await socket.ws.send(json.dumps(error))
                return
            self.speaking += 1
            try:
                await self._generate(socket, context_id, output, texts)
            finally:
                self.speaking -= 1

    async def _generate(
        self,
        socket: _Socket,
        context_id: str,
        output: dict[str, Any],
        texts: MemoryObjectReceiveStream[tuple[str, bool]],
    ) -> None:
        rate = int(output.get("sample_rate", 44100))
        if self.first_chunk_delay_s:
            await anyio.sleep(self.first_chunk_delay_s)  # simulated synthesis latency
        async for text, last in texts:
            for chunk in self._audio(text, rate):
                if not await self._send_chunk(socket, context_id, chunk):
                    return
            if last:
                done = {
                    "type": "done",
                    "context_id": context_id,
                    "done": True,
                    "status_code": 206,
                }
                await socket.ws.send(json.dumps(done))
                self.done.append(context_id)
                return

    async def _send_chunk(self, socket: _Socket, context_id: str, pcm: bytes) -> bool:
        """Send one chunk; False when the fault plan cut the connection instead."""
        if socket.chunks == self.drop_after_chunks:
            socket.ws.transport.abort()  # no close frame: the client sees a dropped link
            return False
        if socket.chunks and self.chunk_delay_s:
            await anyio.sleep(self.chunk_delay_s)
        socket.chunks += 1
        chunk = {
            "type": "chunk",
            "context_id": context_id,
            "data": base64.b64encode(pcm).decode(),
            "done": False,
            "status_code": 206,
            "step_time": 1.0,
        }
        await socket.ws.send(json.dumps(chunk))
        return True

    def _audio(self, text: str, rate: int) -> list[bytes]:
        samples = int(len(text) * self.seconds_per_char * rate)
        t = np.arange(samples) / rate
        wave = 0.3 * np.sin(2 * np.pi * self.tone_hz * t) if self.tone_hz else np.zeros(samples)
        pcm = (wave * 32767).astype("<i2").tobytes()
        step = max(2, int(self.chunk_s * rate) * 2)
        return [pcm[i : i + step] for i in range(0, len(pcm), step)]
