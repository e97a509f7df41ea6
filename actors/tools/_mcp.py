"""Tools of an MCP server, through the official ``mcp`` SDK (streamable HTTP or stdio).

``run`` keeps one session open: connect, initialise, list the tools, then ping every
``retry_s``; a server that cannot be reached, or stops answering, is marked down (its tools are
left out, ``voice_supervisor_tool_source_up`` is 0 and readyz's providers show
``tools:mcp:<name>`` failing) and tried again after ``retry_s``. The other sources are
untouched. This is the one place where the SDK's errors become ``ToolError``s; nothing here
logs arguments or results.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskStatus
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from actors._exceptions import ToolError
from actors._metrics import TOOL_SOURCE_UP
from actors.providers import ToolDefinition
from actors.providers._health import note_failure, note_ok
from actors.tools._http import result_text
from actors.tools._model import ToolOutcome, ToolSpec
from actors.tools._settings import McpServerSettings

__all__ = ("McpTools",)

logger = logging.getLogger(__name__)


class McpTools:
    """One MCP server as a source of tools; implements ``RemoteTools``.

    Args:
        settings: its ``[[mcp_servers]]`` entry.
    """

    def __init__(self, settings: McpServerSettings) -> None:
        self.name = settings.name
        self._settings = settings
        self._source = f"mcp:{settings.name}"
        self._tools: tuple[ToolSpec, ...] = ()
        self._session: ClientSession | None = None
        self._lost = anyio.Event()

    @property
    def tools(self) -> tuple[ToolSpec, ...]:
        return self._tools if self._session is not None else ()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        started = False
        TOOL_SOURCE_UP.labels(source=self._source).set(0)
        while True:
            try:
                async with self._connect() as session:
                    self._session = session
                    TOOL_SOURCE_UP.labels(source=self._source).set(1)
                    note_ok("tools", self._source)
                    logger.info("MCP server up", extra={"source": self._source})
                    if not started:
                        task_status.started()
                        started = True
                    await self._watch(session)
            except Exception as exc:  # the SDK raises many kinds; all mean "down"
                error = _root(exc)
                note_failure("tools", self._source, type(error).__name__)
                logger.warning(
                    "MCP server down; its tools are left out",
                    extra={"source": self._source, "error": type(error).__name__},
                )
            finally:
                self._session = None
                TOOL_SOURCE_UP.labels(source=self._source).set(0)
            if not started:
                task_status.started()
                started = True
            await anyio.sleep(self._settings.retry_s)

    async def call(self, spec: ToolSpec, arguments: dict[str, Any]) -> ToolOutcome:
        session = self._session
        if session is None:
            raise ToolError("the tool's MCP server is down", code="unavailable", retryable=True)
        try:
            with anyio.fail_after(self._settings.timeout_s):
                result = await session.call_tool(spec.name, arguments)
        except TimeoutError:
            raise ToolError("the MCP tool did not answer in time", code="timeout") from None
        except Exception as exc:
            self._lost.set()  # the session may be broken: check it now rather than later
            raise ToolError("the MCP server failed the call", code="unavailable") from exc
        if result.is_error:
            raise ToolError("the MCP tool reported an error", code="refused")
        # The text blocks are what the server wrote for a reader; structured content alone
        # (no text) is given as JSON.
        texts = [block.text for block in result.content if isinstance(block, TextContent)]
        if not texts and result.structured_content is not None:
            return ToolOutcome(result_text(result.structured_content))
        return ToolOutcome("\n".join(texts))

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[ClientSession]:
        settings = self._settings
        timeout = settings.timeout_s
        if settings.transport == "stdio":
            assert settings.command is not None  # the settings' validator checks it
            params = StdioServerParameters(command=settings.command, args=list(settings.args))
            transport = stdio_client(params)
        else:
            assert settings.url is not None
            transport = streamable_http_client(settings.url)
        async with (
            transport as (read, write),
            ClientSession(read, write, read_timeout_seconds=timeout) as session,
        ):
            with anyio.fail_after(timeout):
                await session.initialize()
                listed = await session.list_tools()
            self._tools = tuple(
                ToolSpec(
                    ToolDefinition(
                        tool.name,
                        tool.description or tool.title or tool.name,
                        dict(tool.input_schema or {"type": "object", "properties": {}}),
                    ),
                    self._source,
                    idempotent=settings.idempotent,
                    timeout_s=timeout,
                )
                for tool in listed.tools
            )
            yield session

    async def _watch(self, session: ClientSession) -> None:
        """Return when the server stops answering (a ping every ``retry_s``, or a failed call)."""
        while True:
            with anyio.move_on_after(self._settings.retry_s):
                await self._lost.wait()
            if self._lost.is_set():
                self._lost = anyio.Event()
            with anyio.fail_after(self._settings.timeout_s):
                await session.send_ping()


def _root(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
