"""A wire-protocol fake of OpenAI's streaming chat completions (``POST /v1/chat/completions``).

It answers what the openai SDK 3 sends (SDK-FACTS §4): ``Authorization: Bearer <key>``, a JSON
body with ``stream: true``; the reply is ``text/event-stream`` with one ``data: <chunk>`` per
word and ``data: [DONE]``. The reply is the next of ``replies`` (consumed), else an echo of the
last user message.

Faults: ``fail_status`` answers with an HTTP error and a JSON error body; ``headers_delay_s``
holds the response headers back; ``first_token_delay_s`` and ``token_delay_s`` slow the stream;
``drop_after_tokens`` cuts the connection mid-stream; ``error_after_tokens`` sends an SSE error.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiohttp import web

__all__ = ("OpenAiFake",)

_TOKEN = re.compile(r"\s*\S+\s*")


@dataclass
class OpenAiFake:
    """Configure before a request; read the recorded requests after."""

    api_key: str = "sk-test"
    replies: list[str] = field(default_factory=list)
    echo_prefix: str = "Echo: "
    fail_status: int | None = None
    headers_delay_s: float = 0.0
    first_token_delay_s: float = 0.0
    token_delay_s: float = 0.0
    drop_after_tokens: int | None = None
    error_after_tokens: int | None = None

    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """What to give ``OpenAiLlm(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[OpenAiFake]:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        # Bind the socket ourselves so the port chosen for port 0 is known.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        try:
            yield self
        finally:
            await runner.cleanup()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        self.auth_headers.append(request.headers.get("Authorization", ""))
        body = await request.json()
        self.requests.append(body)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        if self.fail_status is not None:
            return _error(self.fail_status, "fake_error", "Injected failure.")
        if self.headers_delay_s:
            await anyio.sleep(self.headers_delay_s)  # simulated latency
        reply = self.replies.pop(0) if self.replies else self._echo(body)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if self.first_token_delay_s:
            await anyio.sleep(self.first_token_delay_s)
        for index, token in enumerate(_TOKEN.findall(reply)):
            if index == self.drop_after_tokens:
                assert request.transport is not None
                request.transport.abort()  # no terminating chunk: the client sees a cut link
                return response
            if index == self.error_after_tokens:
                error = {"error": {"message": "injected", "type": "server_error", "code": None}}
                await response.write(f"data: {json.dumps(error)}\n\n".encode())
                return response
            if index and self.token_delay_s:
                await anyio.sleep(self.token_delay_s)
            await response.write(_sse(_chunk(token, body.get("model", "fake"))))
        await response.write(_sse(_chunk("", body.get("model", "fake"), finish="stop")))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _echo(self, body: dict[str, Any]) -> str:
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        return f"{self.echo_prefix}{users[-1]['content'] if users else ''}"


def _chunk(content: str, model: str, finish: str | None = None) -> dict[str, Any]:
    delta = {"role": "assistant", "content": content} if content else {}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"error": {"message": message, "type": "fake", "param": None, "code": code}}
    return web.json_response(body, status=status)
