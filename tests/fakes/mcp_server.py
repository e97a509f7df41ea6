"""An MCP server made with the official SDK (``MCPServer``), with one tool, for tests.

``python -m tests.fakes.mcp_server`` serves it over stdio (as ``[[mcp_servers]] transport =
"stdio"`` runs it); ``serving_http()`` serves its streamable HTTP app on a free port.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer

__all__ = ("SERVER", "serving_http")

SERVER = MCPServer("test-tools")


@SERVER.tool()
def weather(city: str) -> str:
    """The weather in a city."""
    return f"It is sunny in {city}."


@asynccontextmanager
async def serving_http() -> AsyncIterator[str]:
    """Serve the streamable HTTP app; yields its MCP endpoint's URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # connections wait in the backlog until uvicorn accepts: no race
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        SERVER.streamable_http_app(), log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: server.serve(sockets=[sock]))
        try:
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            server.should_exit = True


if __name__ == "__main__":
    SERVER.run("stdio")
