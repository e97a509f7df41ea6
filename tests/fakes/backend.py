"""The reference backend over real HTTP, with faults on command.

``running_backend(path)`` serves ``actors.persistence.build_backend_app`` on 127.0.0.1 (a free
port) in the test's event loop, wrapped in a middleware that can:

- answer batch requests with scripted faults (``fail(Fault(...))``): an error status, a
  ``Retry-After``, a delay before answering (a slow backend), or a delay and then the real answer;
- refuse any batch holding given ids with a 400 that names no event (``reject_ids``);
- fail any batch holding given ids, every time, with a fault's status and ``Retry-After``
  (``fail_ids``: an event the backend can never store, a poison event);
- go down and come back up on the same port (``down()``/``up()``: connections are refused);
- record every request and response (``captured``) and every event id on the wire
  (``received``), and let a test wait for a number of requests (``wait_requests``).
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from aiohttp import web

from actors.persistence import EmbeddedStore, build_backend_app
from actors.persistence._reference_backend import TOOLS_KEY
from actors.persistence._reference_tools import DEMO_TOOLS, BackendTool, ToolRoutes

__all__ = ("Captured", "Fault", "FaultyBackend", "running_backend")

BATCH_PATH = "/v1/events:batch"


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted answer to the next matching request.

    Attributes:
        status: the status to answer (ignored with ``pass_through``).
        retry_after: a ``Retry-After`` header value, or None.
        delay_s: how long to hold the request first (a slow backend).
        pass_through: after the delay, let the reference backend answer.
        path: the request path it applies to.
    """

    status: int = 500
    retry_after: str | None = None
    delay_s: float = 0.0
    pass_through: bool = False
    path: str = BATCH_PATH


@dataclass(frozen=True, slots=True)
class Captured:
    """A request the backend saw and what it answered."""

    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int
    response_body: bytes
    response_headers: dict[str, str]
    at: float


@dataclass
class FaultyBackend:
    """The reference backend plus fault injection; see the module docstring."""

    store: EmbeddedStore
    token: str | None = None
    port: int = 0
    faults: deque[Fault] = field(default_factory=deque)
    reject_ids: set[str] = field(default_factory=set)
    fail_ids: dict[str, Fault] = field(default_factory=dict)
    received: Counter[str] = field(default_factory=Counter)
    captured: list[Captured] = field(default_factory=list)
    tools: tuple[BackendTool, ...] = DEMO_TOOLS
    tool_routes: ToolRoutes | None = None
    """The running app's tool routes (``invocations``: what ran)."""
    _runner: web.AppRunner | None = None
    _changed: anyio.Event = field(default_factory=anyio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, *faults: Fault) -> None:
        """Answer the next matching requests with these faults, in order."""
        self.faults.extend(faults)

    def batch_requests(self) -> list[Captured]:
        return [c for c in self.captured if c.path == BATCH_PATH]

    async def wait_requests(self, count: int, *, path: str = BATCH_PATH) -> None:
        """Wait until ``count`` requests to ``path`` have been answered."""
        while sum(1 for c in self.captured if c.path == path) < count:
            changed = self._changed
            await changed.wait()

    async def up(self) -> None:
        """Listen (again) on ``port`` (a free one the first time)."""
        assert self._runner is None, "the backend is already up"
        app = build_backend_app(
            self.store, token=self.token, middlewares=[self._middleware], tools=self.tools
        )
        self.tool_routes = app[TOOLS_KEY]
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site.port  # the port bound, also the first time (port 0)
        self._runner = runner

    async def down(self) -> None:
        """Stop listening and close every open connection (clients get refused)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body = await request.read()
        if request.path == BATCH_PATH:
            ids = _ids(body)
            self.received.update(ids)
        else:
            ids = []
        response = await self._answer(request, handler, ids)
        assert isinstance(response, web.Response)
        self.captured.append(
            Captured(
                method=request.method,
                path=request.path,
                raw_path=request.raw_path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=body,
                status=response.status,
                response_body=response.body if isinstance(response.body, bytes) else b"",
                response_headers=dict(response.headers),
                at=anyio.current_time(),
            )
        )
        self._changed.set()
        self._changed = anyio.Event()
        return response

    async def _answer(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ids: list[str],
    ) -> web.StreamResponse:
        if self.faults and self.faults[0].path == request.path:
            fault = self.faults.popleft()
            if fault.delay_s:
                await anyio.sleep(fault.delay_s)  # the fault itself: a slow backend
            if not fault.pass_through:
                return _fault_response(fault)
        if self.reject_ids.intersection(ids):
            return web.json_response({"error": "injected refusal naming no event"}, status=400)
        poison = next((self.fail_ids[i] for i in ids if i in self.fail_ids), None)
        if poison is not None:
            return _fault_response(poison)
        return await handler(request)


def _fault_response(fault: Fault) -> web.Response:
    headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
    return web.json_response(
        {"error": f"injected {fault.status}"}, status=fault.status, headers=headers
    )


def _ids(body: bytes) -> list[str]:
    try:
        events = json.loads(body)["events"]
        return [str(e["id"]) for e in events]
    except (ValueError, KeyError, TypeError):
        return []


@asynccontextmanager
async def running_backend(
    path: Path, *, token: str | None = None, tools: tuple[BackendTool, ...] = DEMO_TOOLS
) -> AsyncIterator[FaultyBackend]:
    """The reference backend over ``path`` (a SQLite file), up, on a free port."""
    store = EmbeddedStore(path)
    backend = FaultyBackend(store, token=token, tools=tools)
    await backend.up()
    try:
        yield backend
    finally:
        await backend.down()
        store.close()
