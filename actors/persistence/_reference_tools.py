"""The reference backend's tools: ``GET /v1/tools`` and ``POST /v1/tools/{name}:invoke``.

A backend author adds a tool by adding a ``BackendTool`` (its definition as ``GET /v1/tools``
lists it, and an async function from the invoke body to a JSON result) to the ``tools`` given
to ``build_backend_app``. The one shipped, ``order_status``, is a demonstration: it answers
every order id with the same made-up status. Invocations are de-duplicated by their
``Idempotency-Key`` (the agent sends the call's id, the same on every attempt): a repeat gets
the first answer without running the tool again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from actors.persistence._json import loads

__all__ = ("DEMO_TOOLS", "BackendTool", "ToolRoutes")

ToolRun = Callable[[dict[str, Any]], Awaitable[Any]]
"""A tool's body: the invoke body (``arguments``, ``conversation_id``, ``room``, ``caller``,
``caller_role``, ``call_id``) to its JSON result; raising ``web.HTTPException`` answers that
status (``HTTPForbidden`` for a caller whose role may not use it)."""

_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class BackendTool:
    name: str
    description: str
    run: ToolRun
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    idempotent: bool = False
    timeout_s: float = 5.0

    def listing(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "idempotent": self.idempotent,
            "timeout_s": self.timeout_s,
        }


async def _order_status(body: dict[str, Any]) -> Any:
    order = str(body["arguments"].get("order_id", "")).strip()
    return f"Order {order} has shipped and arrives tomorrow."


DEMO_TOOLS: tuple[BackendTool, ...] = (
    BackendTool(
        "order_status",
        "Look up the delivery status of an order by its id.",
        _order_status,
        {
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "The order's id."}},
            "required": ["order_id"],
        },
        idempotent=True,
    ),
)
"""The tools the reference backend serves unless told otherwise (a demonstration)."""


class ToolRoutes:
    """The two routes over ``tools``, with the idempotency memory."""

    def __init__(self, tools: Mapping[str, BackendTool]) -> None:
        self._tools = dict(tools)
        self._answers: OrderedDict[str, Any] = OrderedDict()
        self.invocations: list[dict[str, Any]] = []
        """Every invoke body that ran a tool (repeats excluded), for tests and demos."""

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/v1/tools", self.listing)
        app.router.add_post(r"/v1/tools/{name}:invoke", self.invoke)

    async def listing(self, _request: web.Request) -> web.Response:
        return web.json_response({"tools": [tool.listing() for tool in self._tools.values()]})

    async def invoke(self, request: web.Request) -> web.Response:
        tool = self._tools.get(request.match_info["name"])
        if tool is None:
            return web.json_response({"error": "no such tool"}, status=404)
        try:
            body = loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("arguments"), dict):
            return web.json_response(
                {"error": "the body must be an object with an 'arguments' object"}, status=400
            )
        if any(not isinstance(body.get(k), str | None) for k in ("caller", "caller_role")):
            return web.json_response(
                {"error": "'caller' and 'caller_role' must be strings or null"}, status=400
            )
        given = request.headers.get("Idempotency-Key")
        key = None if given is None else f"{tool.name}\0{given}"
        if key is not None and key in self._answers:
            return web.json_response({"result": self._answers[key]})
        self.invocations.append({"tool": tool.name, **body})
        result = await tool.run(body)
        if key is not None:
            self._answers[key] = result
            while len(self._answers) > _REMEMBERED:
                self._answers.popitem(last=False)
        return web.json_response({"result": result})
