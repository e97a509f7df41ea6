"""Tools: what the agent can do besides talking.

Declared in ``[[tools]]``, served by the backend (``GET /v1/tools``), offered by MCP servers
(``[[mcp_servers]]``) or built in (``end_call``); merged into one ``ToolBox`` per process,
invoked over HTTP (``POST /v1/tools/{name}:invoke``), MCP, or in the room. The room's side
(when to call, the filler, barge-in, events) is ``actors.room._tool_calls``.
"""

from __future__ import annotations

from actors.tools._box import RemoteTools, ToolBox
from actors.tools._builtins import BUILTINS, Builtin
from actors.tools._http import ToolHttp, result_text
from actors.tools._model import RoomControl, ToolContext, ToolOutcome, ToolSpec
from actors.tools._open import open_tools
from actors.tools._settings import McpServerSettings, ToolCallSettings, ToolSettings

__all__ = (
    "BUILTINS",
    "Builtin",
    "McpServerSettings",
    "RemoteTools",
    "RoomControl",
    "ToolBox",
    "ToolCallSettings",
    "ToolContext",
    "ToolHttp",
    "ToolOutcome",
    "ToolSettings",
    "ToolSpec",
    "open_tools",
    "result_text",
)
