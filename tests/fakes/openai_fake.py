"""A wire-protocol fake of OpenAI's streaming chat completions (``POST /v1/chat/completions``).

It answers what the openai SDK 3 sends (SDK-FACTS §4): ``Authorization: Bearer <key>``, a JSON
body with ``stream: true``; the reply is ``text/event-stream`` with one ``data: <chunk>`` per
word and ``data: [DONE]``. The reply is the next of ``replies`` (consumed), else an echo of the
last user message.

The defaults behave like OpenAI itself. Each knob makes it behave like another server the
README's "any OpenAI-compatible LLM" promises to work with (documents named):

- ``refuse_name``: Groq's OpenAI compatibility ("Unsupported features: messages[].name") and
  other gateways answer 400 ``invalid_request_error`` to a message carrying ``name``.
- ``strict_roles``: strict chat templates (Mistral's and Gemma's, as served by vLLM; llama.cpp
  server) raise "Conversation roles must alternate user/assistant/user/assistant/..." when the
  roles after the system prompt do not alternate starting with the user; vLLM answers 400,
  llama.cpp 500 (``strict_roles_status``).
- ``reasoning_deltas``: reasoning models stream their thinking first, in
  ``delta.reasoning_content`` (DeepSeek API docs, "Reasoning Model"; vLLM "Reasoning Outputs")
  or ``delta.reasoning`` (OpenRouter "Reasoning Tokens"; Ollama; Groq), ``reasoning_delay_s``
  apart, before any ``delta.content``.
- ``rate_limited``: that many requests get 429 ``rate_limit_exceeded`` with ``Retry-After`` and
  ``retry-after-ms`` headers of ``retry_after_s`` (OpenAI "Rate limits"; "Error codes").
- ``quota_exhausted``: 429 with code and type ``insufficient_quota`` ("You exceeded your current
  quota...", OpenAI "Error codes"): retrying never helps.
- ``cut_after_tokens`` with ``finish_reason``: the stream stops after that many tokens with
  ``finish_reason`` ``length`` (``max_tokens`` reached) or ``content_filter`` (API reference,
  "The chat completion chunk object").
- ``require_key``: False serves like Ollama, vLLM or llama.cpp started without an API key: any
  ``Authorization`` (or none) is accepted.

Tool calls: ``tool_calls`` holds, per response (consumed in order, before ``replies``), the
calls to stream as OpenAI does: each call's first fragment carries its ``index``, ``id``,
``type`` and ``function.name`` with empty arguments, the next ones only ``function.arguments``
pieces of ``tool_argument_chunk`` characters (split anywhere, inside strings too), one call
after the other, then ``finish_reason: "tool_calls"`` (API reference, "Streaming": tool call
deltas). A reply text given with them (``replies``) streams first, as a model that says
"Let me check" before calling does.

Faults: ``fail_status`` answers with an HTTP error and a JSON error body; ``headers_delay_s``
holds the response headers back; ``first_token_delay_s`` and ``token_delay_s`` slow the stream;
``drop_after_tokens`` cuts the connection mid-stream; ``error_after_tokens`` sends an SSE error.
"""

from __future__ import annotations

import json
import math
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
ALTERNATE = "Conversation roles must alternate user/assistant/user/assistant/..."


@dataclass
class OpenAiFake:
    """Configure before a request; read the recorded requests after."""

    api_key: str = "sk-test"
    replies: list[str] = field(default_factory=list)
    echo_prefix: str = "Echo: "
    require_key: bool = True
    refuse_name: bool = False
    strict_roles: bool = False
    strict_roles_status: int = 400
    reasoning_deltas: int = 0
    reasoning_field: str = "reasoning_content"
    reasoning_delay_s: float = 0.0
    rate_limited: int = 0
    retry_after_s: float = 1.0
    quota_exhausted: bool = False
    cut_after_tokens: int | None = None
    finish_reason: str = "length"

    fail_status: int | None = None
    headers_delay_s: float = 0.0
    first_token_delay_s: float = 0.0
    token_delay_s: float = 0.0
    drop_after_tokens: int | None = None
    error_after_tokens: int | None = None

    tool_calls: list[list[dict[str, str]]] = field(default_factory=list)
    """Per response: ``[{"name": ..., "arguments": <JSON text>}, ...]``."""
    text_with_calls: bool = False
    """Stream the next of ``replies`` before the calls (else only the calls)."""
    tool_argument_chunk: int = 4

    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    """The message of every request refused by a behaviour above (not by ``fail_status``)."""

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
        if self.require_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        if self.fail_status is not None:
            return _error(self.fail_status, "fake_error", "Injected failure.")
        if (refused := self._refuse(body)) is not None:
            return refused
        if self.headers_delay_s:
            await anyio.sleep(self.headers_delay_s)  # simulated latency
        if self.tool_calls:
            return await self._stream_calls(request, body, self.tool_calls.pop(0))
        reply = self.replies.pop(0) if self.replies else self._echo(body)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        model = body.get("model", "fake")
        if self.first_token_delay_s:
            await anyio.sleep(self.first_token_delay_s)
        for index in range(self.reasoning_deltas):
            if index and self.reasoning_delay_s:
                await anyio.sleep(self.reasoning_delay_s)  # simulated thinking
            await response.write(_sse(_chunk(model, {self.reasoning_field: "Hmm. "})))
        finish = "stop"
        for index, token in enumerate(_TOKEN.findall(reply)):
            if index == self.cut_after_tokens:
                finish = self.finish_reason
                break
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
            await response.write(_sse(_chunk(model, {"role": "assistant", "content": token})))
        await response.write(_sse(_chunk(model, {}, finish=finish)))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _stream_calls(
        self, request: web.Request, body: dict[str, Any], calls: list[dict[str, str]]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        model = body.get("model", "fake")
        if self.text_with_calls and self.replies:
            for token in _TOKEN.findall(self.replies.pop(0)):
                await response.write(_sse(_chunk(model, {"role": "assistant", "content": token})))
        for index, call in enumerate(calls):
            first = {
                "index": index,
                "id": f"call_{len(self.requests)}_{index}",
                "type": "function",
                "function": {"name": call["name"], "arguments": ""},
            }
            await response.write(_sse(_chunk(model, {"role": "assistant", "tool_calls": [first]})))
            text, step = call["arguments"], self.tool_argument_chunk
            for start in range(0, len(text), step):
                piece = {"index": index, "function": {"arguments": text[start : start + step]}}
                await response.write(_sse(_chunk(model, {"tool_calls": [piece]})))
        await response.write(_sse(_chunk(model, {}, finish="tool_calls")))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _refuse(self, body: dict[str, Any]) -> web.Response | None:
        messages: list[dict[str, Any]] = body.get("messages", [])
        if self.quota_exhausted:
            message = "You exceeded your current quota, please check your plan and billing details."
            return self._refused(429, _error(429, "insufficient_quota", message, _QUOTA_TYPE))
        if self.rate_limited > 0:
            self.rate_limited -= 1
            seconds = self.retry_after_s
            response = _error(429, "rate_limit_exceeded", "Rate limit reached.", "requests")
            response.headers["retry-after"] = str(math.ceil(seconds))
            response.headers["retry-after-ms"] = str(round(seconds * 1000))
            return self._refused(429, response)
        if self.refuse_name:
            for index, m in enumerate(messages):
                if "name" in m:
                    text = f"'messages.{index}' : property 'name' is unsupported"
                    return self._refused(400, _error(400, None, text))
        if self.strict_roles:
            roles = [m.get("role") for m in messages]
            while roles and roles[0] == "system":
                roles.pop(0)
            expected = ["user" if i % 2 == 0 else "assistant" for i in range(len(roles))]
            if roles != expected:
                status = self.strict_roles_status
                return self._refused(status, _error(status, None, ALTERNATE))
        return None

    def _refused(self, status: int, response: web.Response) -> web.Response:
        assert response.text is not None
        self.refusals.append(json.loads(response.text)["error"]["message"])
        return response

    def _echo(self, body: dict[str, Any]) -> str:
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        return f"{self.echo_prefix}{users[-1]['content'] if users else ''}"


_QUOTA_TYPE = "insufficient_quota"


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


def _error(
    status: int, code: str | None, message: str, kind: str = "invalid_request_error"
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)
