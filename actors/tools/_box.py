"""The tools of a process: built-ins, ``[[tools]]``, the backend's list and MCP servers, merged.

A room host runs one ``ToolBox`` (``run`` reads the backend's list now and then, and keeps the
MCP servers connected) and shares it among its rooms; each room asks ``offered`` for its set
(room metadata ``"tools": [...]`` narrows it) and ``invoke``s calls. On a name offered by two
sources the first of built-in, ``[[tools]]``, backend, MCP wins. Arguments are validated
against the tool's JSON Schema (jsonschema) before anything is sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import anyio
from anyio.abc import TaskStatus
from jsonschema import Draft202012Validator

from actors._exceptions import ToolError
from actors.providers import ToolDefinition
from actors.tools._builtins import BUILTINS
from actors.tools._http import ToolHttp
from actors.tools._model import ToolContext, ToolOutcome, ToolSpec
from actors.tools._settings import ToolCallSettings, ToolSettings

__all__ = ("RemoteTools", "ToolBox")

logger = logging.getLogger(__name__)

_FIRST_TRY_S = 2.0
"""Longest a room host waits for its tool sources' first answer before it takes rooms."""


class RemoteTools(Protocol):
    """A source of tools that may be down (an MCP server): its tools are offered while up."""

    name: str

    @property
    def tools(self) -> tuple[ToolSpec, ...]:
        """Its tools now (none while it is down)."""
        ...

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        """Connect (``started`` after the first attempt, up or not) and stay connected."""
        ...

    async def call(self, spec: ToolSpec, arguments: dict[str, Any]) -> ToolOutcome:
        """Run one of its tools.

        Raises:
            ToolError: the call failed.
        """
        ...


class ToolBox:
    """Every tool this process can offer.

    Args:
        settings: ``[tool_calls]``.
        declared: ``[[tools]]``.
        http: the HTTP side (invocations and the backend's list); closed by ``run``'s end.
        remotes: MCP servers.
    """

    def __init__(
        self,
        settings: ToolCallSettings,
        declared: Sequence[ToolSettings],
        http: ToolHttp,
        remotes: Sequence[RemoteTools] = (),
    ) -> None:
        self.settings = settings
        self._http = http
        self._remotes = tuple(remotes)
        self._builtins = {
            name: ToolSpec(BUILTINS[name].definition, "builtin", idempotent=True)
            for name in settings.builtins
        }
        self._declared = {
            t.name: ToolSpec(
                ToolDefinition(t.name, t.description, t.parameters),
                "config",
                idempotent=t.idempotent,
                timeout_s=t.timeout_s,
                url=t.url,
            )
            for t in declared
        }
        self._backend: dict[str, ToolSpec] = {}
        self._validators: dict[tuple[str, str, str], Draft202012Validator] = {}

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Read the backend's tools and connect the MCP servers, then keep both fresh until
        cancelled. ``started`` once each source has been tried once, or after
        ``_FIRST_TRY_S`` at most: a slow source never holds up the rooms (its tools are
        offered from when it answers)."""
        try:
            async with anyio.create_task_group() as tg:
                first = anyio.Event()
                tg.start_soon(self._first_try, first, name="tools:first-try")
                with anyio.move_on_after(_FIRST_TRY_S):
                    await first.wait()
                task_status.started()
        finally:
            await self.aclose()

    async def _first_try(self, done: anyio.Event) -> None:
        async with anyio.create_task_group() as tg:
            for remote in self._remotes:
                await tg.start(remote.run, name=f"tools:mcp:{remote.name}")
            await self._refresh_backend()
            done.set()
            while self.settings.backend_tools:
                await anyio.sleep(self.settings.backend_refresh_s)
                await self._refresh_backend()

    async def aclose(self) -> None:
        """Close the HTTP client (``run`` does it when it ends)."""
        await self._http.aclose()

    def offered(self, names: Sequence[str] | None = None) -> tuple[ToolSpec, ...]:
        """The tools offered now, narrowed to ``names`` (room metadata) when given."""
        merged: dict[str, ToolSpec] = {}
        for remote in reversed(self._remotes):
            merged.update((spec.name, spec) for spec in remote.tools)
        for source in (self._backend, self._declared, self._builtins):
            merged.update(source)
        if names is not None:
            wanted = set(names)
            return tuple(spec for name, spec in merged.items() if name in wanted)
        return tuple(merged.values())

    async def invoke(
        self, spec: ToolSpec, arguments: str, context: ToolContext, call_id: str
    ) -> ToolOutcome:
        """Validate ``arguments`` (the model's JSON) against ``spec`` and run it.

        Raises:
            ToolError: invalid arguments, or the call failed.
        """
        parsed = self._arguments(spec, arguments)
        if spec.source == "builtin":
            return BUILTINS[spec.name].run(parsed, self.settings)
        if spec.source.startswith("mcp:"):
            remote = next((r for r in self._remotes if f"mcp:{r.name}" == spec.source), None)
            if remote is None:
                raise ToolError("the tool's MCP server is not configured", code="unknown_tool")
            return await remote.call(spec, parsed)
        return await self._http.invoke(spec, parsed, context, call_id)

    def _arguments(self, spec: ToolSpec, arguments: str) -> dict[str, Any]:
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise ToolError("the arguments are not JSON", code="invalid_arguments") from None
        if not isinstance(parsed, dict):
            raise ToolError("the arguments are not a JSON object", code="invalid_arguments")
        schema = spec.definition.parameters
        key = (spec.source, spec.name, json.dumps(schema, sort_keys=True))
        validator = self._validators.get(key)
        if validator is None:
            if len(self._validators) > 1024:  # a backend whose schemas keep changing
                self._validators.clear()
            validator = self._validators[key] = Draft202012Validator(schema)
        error = next(iter(validator.iter_errors(parsed)), None)
        if error is not None:
            # The path names the field; the message may quote the value (user words): left out.
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            raise ToolError(
                f"the arguments break the tool's schema at {where} ({error.validator})",
                code="invalid_arguments",
            )
        return parsed

    async def _refresh_backend(self) -> None:
        if not self.settings.backend_tools:
            return
        try:
            specs = await self._http.list_backend()
        except ToolError as exc:
            logger.warning("could not read the backend's tools", extra={"error": exc.code})
            return
        self._backend = {spec.name: spec for spec in specs}
