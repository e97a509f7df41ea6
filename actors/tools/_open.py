"""Build a process's ``ToolBox`` from its settings."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from actors._exceptions import ConfigError
from actors.tools._box import RemoteTools, ToolBox
from actors.tools._builtins import BUILTINS
from actors.tools._http import ToolHttp
from actors.tools._settings import McpServerSettings, ToolCallSettings, ToolSettings

__all__ = ("open_tools",)


def open_tools(
    settings: ToolCallSettings,
    declared: Sequence[ToolSettings],
    mcp_servers: Sequence[McpServerSettings],
    *,
    backend_url: str | None,
    backend_token: SecretStr | None,
) -> ToolBox:
    """The tool box of a process (nothing is connected until its ``run``).

    Raises:
        ConfigError: a declared tool has no ``url`` and there is no backend, two share a name,
            or one takes a built-in's name.
    """
    names = [tool.name for tool in declared]
    for index, tool in enumerate(declared):
        key = f"[[tools]] {index} ({tool.name})"
        if names.count(tool.name) > 1:
            raise ConfigError(f"{key}: two tools are named {tool.name!r}; rename one")
        if tool.name in BUILTINS:
            raise ConfigError(f"{key}: {tool.name!r} is a built-in tool's name; rename it")
        if tool.url is None and backend_url is None:
            raise ConfigError(
                f"{key}: no url and no [persistence] backend_url to invoke it at; set one"
            )
    remotes: list[RemoteTools] = []
    if mcp_servers:
        from actors.tools._mcp import McpTools  # the MCP SDK is imported only when used

        remotes = [McpTools(server) for server in mcp_servers]
    backend = backend_url if settings.backend_tools else None
    http = ToolHttp(settings, backend_url, backend_token)
    if backend is None:
        settings = settings.model_copy(update={"backend_tools": False})
    return ToolBox(settings, declared, http, remotes)
