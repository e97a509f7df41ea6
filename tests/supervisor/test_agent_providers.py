"""An agent profile's own providers (``[agents.NAME.stt]``, ``.llm``, ``.tts``): keys of the
section that differ for that agent, validated as a whole, built as the shared chains are."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from actors import ConfigError
from actors.providers import ChatMessage, FallbackLlm, LlmProvider
from supervisor import parse_config
from supervisor._preflight import provider_problems
from supervisor.host import close_providers, open_agent_providers, open_providers


def agents(**profiles: dict[str, Any]) -> dict[str, Any]:
    return {"agents": {n: {"identity": f"agent-{n}", **p} for n, p in profiles.items()}}


def test_a_profile_changes_only_the_keys_it_names_and_nothing_for_the_others() -> None:
    cfg = parse_config(
        {
            "llm": {"echo_prefix": "Ava: ", "timeout_s": 7},
            **agents(sam={"llm": {"echo_prefix": "Sam: ", "greeting": ""}}, notes={}),
        },
        environ={},
    )
    stt, llm, tts = cfg.stages("sam")
    assert (llm.echo_prefix, llm.greeting, llm.timeout_s) == ("Sam: ", "", 7)
    assert stt is cfg.stt and tts is cfg.tts
    assert cfg.stages("") == (cfg.stt, cfg.llm, cfg.tts)
    assert all(a is b for a, b in zip(cfg.stages("notes"), cfg.stages(""), strict=True))


def test_own_provider_keys_are_validated_strictly_with_the_key_and_the_fix_named() -> None:
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "unknown key": ({"llm": {"modle": "x"}}, "[agents.sam.llm] modle: unknown key; allowed"),
        "bad vendor": ({"stt": {"provider": "whisper"}}, "[agents.sam.stt] provider = 'whisper'"),
        "bad value": ({"llm": {"timeout_s": -1}}, "[agents.sam.llm] timeout_s = -1"),
        "whole chain": (
            {"tts": {"provider": "cartesia"}},
            "with provider = 'cartesia', voice must be a Cartesia voice id",
        ),
        "not a table": ({"llm": "openai"}, "[agents] sam.llm"),
    }
    for case, (own, expected) in cases.items():
        with pytest.raises(ConfigError) as info:
            parse_config(agents(sam=own), environ={})
        assert expected in str(info.value), case
    secret = {"llm": {"provider": "openai", "api_key": 5}}
    with pytest.raises(ConfigError) as info:
        parse_config(agents(sam=secret), environ={})
    assert "api_key = <secret>" in str(info.value)


def test_check_config_builds_each_profiles_own_chains_and_names_the_profile() -> None:
    own = {"provider": "openai", "model": "gpt-4o"}
    cfg = parse_config({"voice": {"enabled": True}, **agents(sam={"llm": own})}, environ={})
    assert provider_problems(cfg) == [
        "[agents.sam] [llm] api_key is not set: export OPENAI_API_KEY (or set it)"
    ]
    with_key = {"OPENAI_API_KEY": "sk-test"}  # the section's key serves the profile too
    cfg = parse_config({"voice": {"enabled": True}, **agents(sam={"llm": own})}, environ=with_key)
    assert provider_problems(cfg) == []


async def reply(llm: LlmProvider, text: str) -> str:
    return "".join([word async for word in llm.complete([ChatMessage("user", text)])])


async def test_an_agent_gets_its_own_chain_for_what_it_changes_and_the_shared_rest() -> None:
    cfg = parse_config(
        {"voice": {"enabled": True}, **agents(sam={"llm": {"echo_prefix": "Sam: "}}, notes={})},
        environ={},
    )
    shared = open_providers(cfg).providers
    assert open_agent_providers(cfg, "", shared) is shared
    assert open_agent_providers(cfg, "notes", shared) is shared
    sam = open_agent_providers(cfg, "sam", shared)
    assert sam.stt is shared.stt and sam.tts is shared.tts and sam.tools is shared.tools
    assert sam.llm is not shared.llm
    assert isinstance(sam.llm, FallbackLlm)
    assert await reply(sam.llm, "hello") == "Sam: hello"
    assert await reply(shared.llm, "hello") == "You said: hello"
    await close_providers(sam, shared)  # its own chain only: the shared ones still work
    assert await reply(shared.llm, "again") == "You said: again"
    await close_providers(shared)


async def test_an_agents_own_chain_that_cannot_be_built_names_the_profile() -> None:
    own = {"llm": {"provider": "openai"}}
    cfg = parse_config({"voice": {"enabled": True}, **agents(sam=own)}, environ={})
    shared = open_providers(cfg).providers
    with pytest.raises(ConfigError, match=r"^\[agents.sam\] \[llm\] api_key is not set"):
        open_agent_providers(cfg, "sam", shared)
    with anyio.fail_after(5):
        await close_providers(shared)
