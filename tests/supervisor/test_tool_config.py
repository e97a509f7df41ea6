"""Tool settings as an operator meets them: check-config names a tool that cannot run, and a
bad schema or an unknown key is a config error naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors import ConfigError
from actors.room import Providers
from supervisor import Daemon, parse_config
from supervisor._preflight import provider_problems
from tests.fakes.instant import EchoLlm, InstantStt, ToneTts
from tests.harness.livekit_server import free_port
from tests.harness.offline import offline_config, serving
from tests.harness.waits import poll_until

TOOL = {"name": "lookup", "description": "Look it up."}


def test_check_config_names_a_tool_with_nowhere_to_run(tmp_path: Path) -> None:
    config = parse_config({"persistence": {"data_dir": str(tmp_path)}, "tools": [TOOL]})
    (problem,) = provider_problems(config)
    assert "[[tools]] 0 (lookup)" in problem and "backend_url" in problem
    with_backend = parse_config(
        {"persistence": {"data_dir": str(tmp_path), "backend_url": "http://b"}, "tools": [TOOL]}
    )
    assert provider_problems(with_backend) == []


def test_a_bad_schema_and_an_unknown_key_name_the_tool() -> None:
    with pytest.raises(ConfigError, match=r"\[tools\] 0.parameters"):
        parse_config({"tools": [{**TOOL, "parameters": {"type": "object", "required": 3}}]})
    with pytest.raises(ConfigError, match=r"\[tools\] 0.timeout"):
        parse_config({"tools": [{**TOOL, "timeout": 3}]})
    with pytest.raises(ConfigError, match="unknown built-in"):
        parse_config({"tool_calls": {"builtins": ["hang_up"]}})


@pytest.mark.anyio
async def test_readyz_shows_an_mcp_server_that_is_down(tmp_path: Path) -> None:
    config = offline_config(
        tmp_path,
        supervisor={"workers": 0, "worker_heartbeat_s": 0.2},
        mcp_servers=[{"name": "gone", "url": f"http://127.0.0.1:{free_port()}/mcp"}],
    )
    daemon = Daemon(config, providers=Providers(InstantStt(), EchoLlm(), ToneTts()))
    async with serving(daemon) as http:

        async def reported() -> dict[str, Any] | None:
            providers = (await http.get("/readyz")).json().get("providers", {})
            entry: dict[str, Any] | None = providers.get("tools:mcp:gone")
            return entry

        entry = await poll_until(reported, deadline_s=15, what="the MCP server in readyz")
        assert entry["failing"] is True and entry["last_error"]
