"""Tool settings as an operator meets them: check-config names a tool that cannot run, and a
bad schema or an unknown key is a config error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import ConfigError
from supervisor import parse_config
from supervisor._preflight import provider_problems

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
