"""MCP servers as tool sources, through the official SDK on both transports: tools listed and
called; a server that is down is reported and its tools left out, the others unaffected."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from prometheus_client import REGISTRY

from actors import ToolError
from actors.providers import provider_health
from actors.tools import McpServerSettings, ToolBox, ToolCallSettings, ToolContext, open_tools
from tests.fakes.mcp_server import serving_http

pytestmark = pytest.mark.anyio

CONTEXT = ToolContext("c", "r", None)


@asynccontextmanager
async def running(*servers: McpServerSettings) -> AsyncIterator[ToolBox]:
    box = open_tools(
        ToolCallSettings(builtins=()), (), servers, backend_url=None, backend_token=None
    )
    async with anyio.create_task_group() as tg:
        await tg.start(box.run)
        yield box
        tg.cancel_scope.cancel()


def _up(source: str) -> float | None:
    return REGISTRY.get_sample_value("voice_supervisor_tool_source_up", {"source": source})


async def test_a_stdio_server_s_tool_is_offered_and_called() -> None:
    server = McpServerSettings(
        name="local",
        transport="stdio",
        command=sys.executable,
        args=("-m", "tests.fakes.mcp_server"),
    )
    async with running(server) as box:
        (spec,) = box.offered()
        assert spec.name == "weather" and spec.source == "mcp:local"
        assert spec.definition.parameters["required"] == ["city"]
        outcome = await box.invoke(spec, '{"city": "Oslo"}', CONTEXT, "c1")
        assert outcome.ok and outcome.content == "It is sunny in Oslo."
        with pytest.raises(ToolError) as caught:
            await box.invoke(spec, '{"town": "Oslo"}', CONTEXT, "c2")  # checked before sending
        assert caught.value.code == "invalid_arguments"
        assert _up("mcp:local") == 1


async def test_a_streamable_http_server_beside_one_that_is_down() -> None:
    async with serving_http() as url:
        up = McpServerSettings(name="web", url=url)
        down = McpServerSettings(name="gone", url="http://127.0.0.1:9/mcp", timeout_s=2)
        async with running(up, down) as box:
            (spec,) = box.offered()  # the down server's tools are left out
            assert spec.source == "mcp:web"
            outcome = await box.invoke(spec, '{"city": "Lima"}', CONTEXT, "c1")
            assert outcome.content == "It is sunny in Lima."
            assert _up("mcp:web") == 1 and _up("mcp:gone") == 0
            health = {(h["stage"], h["vendor"]): h for h in provider_health()}
            assert health[("tools", "mcp:gone")]["failing"] is True
            assert health[("tools", "mcp:web")]["failing"] is False
