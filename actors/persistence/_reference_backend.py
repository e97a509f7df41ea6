"""The reference backend: the contract (``docs/backend-openapi.yaml``) served over the embedded
store with aiohttp. ``voice-supervisor backend --db PATH --port N`` runs it; the tests and the
benchmark use it as the real backend, and a team can start its own from it.

- ``POST /v1/events:batch`` validates the whole batch first (``_contract.py``): one bad event
  refuses the batch with a 400 naming it, and nothing is stored. A valid batch is applied in one
  transaction; ids already seen are skipped, so a retried batch is harmless.
- ``POST /v1/rooms/{room}/agent-joined`` returns the metadata's ``conversation_id`` or a new one.
- ``GET /v1/conversations/{id}/messages?limit=N`` returns the last N messages, oldest first.
- ``GET /v1/tools`` lists its tools, ``POST /v1/tools/{name}:invoke`` runs one
  (``_reference_tools.py``: the demo tool ``order_status``, and how to add one).

Every answer is JSON, errors included; with a token configured every request needs
``Authorization: Bearer <token>``. Store calls run in one worker thread (a limiter of one), so
the event loop never blocks on SQLite. Nothing here logs request contents.
"""

from __future__ import annotations

import hmac
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from aiohttp import web
from anyio.abc import TaskStatus

from actors.persistence._contract import ContractError, parse_agent_joined, parse_batch
from actors.persistence._reference_tools import DEMO_TOOLS, BackendTool, ToolRoutes
from actors.persistence._shipper import SqliteThread
from actors.persistence._store import EmbeddedStore

__all__ = ("MAX_BODY_BYTES", "TOOLS_KEY", "build_backend_app", "run_backend", "serve_backend")

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest request body the reference backend reads; a bigger one gets a 413."""

_LIMIT_DEFAULT = 20
_LIMIT_MAX = 1000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STORE_KEY = web.AppKey("store", EmbeddedStore)
_THREAD_KEY = web.AppKey("thread", SqliteThread)
TOOLS_KEY = web.AppKey("tools", ToolRoutes)
"""The app's tool routes (``app[TOOLS_KEY].invocations``: what ran)."""


def build_backend_app(
    store: EmbeddedStore,
    *,
    token: str | None = None,
    middlewares: Iterable[Any] = (),
    max_body_bytes: int = MAX_BODY_BYTES,
    tools: Sequence[BackendTool] = DEMO_TOOLS,
) -> web.Application:
    """The contract's routes over ``store``.

    Args:
        store: where events go and messages come from.
        token: the bearer token every request must carry; None accepts any request.
        middlewares: extra aiohttp middlewares, run outside the token check (tests use them to
            inject faults).
        max_body_bytes: largest request body; a bigger one gets a 413.
        tools: the tools ``GET /v1/tools`` lists and ``POST /v1/tools/{name}:invoke`` runs.
    """
    app = web.Application(
        client_max_size=max_body_bytes,
        middlewares=[*middlewares, _errors_as_json, _bearer(token)],
    )
    app[_STORE_KEY] = store
    app[_THREAD_KEY] = SqliteThread()
    app.router.add_post("/v1/events:batch", _events_batch)
    app.router.add_post("/v1/rooms/{room}/agent-joined", _agent_joined)
    app.router.add_get("/v1/conversations/{conversation_id}/messages", _messages)
    app[TOOLS_KEY] = ToolRoutes({tool.name: tool for tool in tools})
    app[TOOLS_KEY].add_to(app)
    return app


async def serve_backend(
    db: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the contract on ``host:port`` until cancelled; ``task_status`` gets the bound port."""
    store = EmbeddedStore(db)
    runner = web.AppRunner(build_backend_app(store, token=token), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = site.port  # the port bound, also when ``port`` was 0
        logger.info("reference backend listening", extra={"host": host, "port": bound})
        task_status.started(bound)
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()
        store.close()


def run_backend(db: Path, *, host: str, port: int, token: str | None) -> int:
    """The ``voice-supervisor backend`` command: serve until SIGTERM/SIGINT.

    Prints ``backend listening on http://HOST:PORT`` once it accepts requests (with ``--port 0``
    that line tells the port).
    """

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            bound = await tg.start(partial(serve_backend, db, host=host, port=port, token=token))
            sys.stdout.write(f"backend listening on http://{host}:{bound}\n")
            sys.stdout.flush()
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    break
            tg.cancel_scope.cancel("signal received")

    anyio.run(main, backend="asyncio")
    return 0


# -- handlers ---------------------------------------------------------------------------------


async def _events_batch(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        events = parse_batch(raw)
    except ContractError as exc:
        return web.json_response(exc.to_json(), status=400)
    app = request.app
    accepted = await app[_THREAD_KEY].run(app[_STORE_KEY].apply, events)
    return web.json_response({"accepted": accepted, "duplicates": len(events) - accepted})


async def _agent_joined(request: web.Request) -> web.Response:
    try:
        metadata = parse_agent_joined(await request.read())
    except ContractError as exc:
        return web.json_response(exc.to_json(), status=400)
    given = metadata.get("conversation_id")
    cid = given if isinstance(given, str) and given else None
    app = request.app
    conversation_id = await app[_THREAD_KEY].run(
        app[_STORE_KEY].ensure_conversation, request.match_info["room"], metadata, cid
    )
    return web.json_response({"conversation_id": conversation_id})


async def _messages(request: web.Request) -> web.Response:
    text = request.query.get("limit", str(_LIMIT_DEFAULT))
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= _LIMIT_MAX:
        return _error(400, f"limit must be an integer from 1 to {_LIMIT_MAX}")
    app = request.app
    messages = await app[_THREAD_KEY].run(
        app[_STORE_KEY].recent_messages, request.match_info["conversation_id"], limit
    )
    return web.json_response({"messages": messages})


# -- middlewares ------------------------------------------------------------------------------


def _bearer(token: str | None) -> Any:
    expected = None if token is None else f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                response = _error(401, "missing or wrong bearer token")
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
        return await handler(request)

    return check


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is JSON: aiohttp's own errors (404, 405, 413) and unexpected failures too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    except Exception:
        logger.exception("reference backend failed a request")
        return _error(500, "internal error")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
