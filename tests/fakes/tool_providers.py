"""``[voice] providers_factory = "tests.fakes.tool_providers:providers"``: zero-latency voice
fakes with the configured scripted LLM (its tool rules), for rooms in worker processes."""

from __future__ import annotations

from actors.providers import ScriptedLlm
from actors.room import Providers
from supervisor import Config
from tests.fakes.instant import InstantStt, ToneTts


def providers(config: Config) -> Providers:
    llm = ScriptedLlm.from_settings(config.llm)
    return Providers(InstantStt(), llm, ToneTts(ms_per_word=30), greeting=config.llm.greeting)
