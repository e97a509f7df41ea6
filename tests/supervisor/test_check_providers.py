"""``voice-supervisor check-providers`` against the vendors' wire-protocol fakes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import anyio
import pytest

from supervisor._check_providers import check_providers, render
from supervisor._cli import main
from supervisor._config import Config, parse_config
from tests.fakes.cartesia_fake import CartesiaFake
from tests.fakes.deepgram_fake import DeepgramFake
from tests.fakes.fixtures import cartesia_fake, deepgram_fake, openai_fake
from tests.fakes.openai_fake import OpenAiFake

__all__ = ("cartesia_fake", "deepgram_fake", "openai_fake")


def sections(dg: DeepgramFake, oa: OpenAiFake, ct: CartesiaFake) -> dict[str, dict[str, Any]]:
    return {
        "stt": {"provider": "deepgram", "deepgram_url": dg.url, "api_key": dg.api_key},
        "llm": {"provider": "openai", "base_url": oa.base_url, "api_key": oa.api_key},
        "tts": {
            "provider": "cartesia",
            "voice": "voice-1",
            "cartesia_url": ct.url,
            "api_key": ct.api_key,
        },
    }


def config(data: dict[str, dict[str, Any]]) -> Config:
    return parse_config(data, environ={})


async def test_every_vendor_answers_a_tiny_request(
    deepgram_fake: DeepgramFake, openai_fake: OpenAiFake, cartesia_fake: CartesiaFake
) -> None:
    results = await check_providers(config(sections(deepgram_fake, openai_fake, cartesia_fake)))
    assert [(r.stage, r.provider, r.ok) for r in results] == [
        ("stt", "deepgram", True),
        ("llm", "openai", True),
        ("tts", "cartesia", True),
    ]
    assert all(r.first_output_s is not None and r.first_output_s > 0 for r in results)
    # What each vendor was asked: a second of silence, "ping", one word.
    assert deepgram_fake.audio_bytes == 32_000 and deepgram_fake.close_streams == 1
    assert openai_fake.requests[0]["messages"][-1]["content"] == "ping"
    assert [r["transcript"] for r in cartesia_fake.requests] == ["Hello."]
    out = io.StringIO()
    render(results, out)
    lines = out.getvalue().splitlines()
    assert lines[-1] == "all providers answered"
    assert all(" ms " in line for line in lines[1:-1])


async def test_failures_name_the_setting_to_fix(
    deepgram_fake: DeepgramFake, openai_fake: OpenAiFake, cartesia_fake: CartesiaFake
) -> None:
    data = sections(deepgram_fake, openai_fake, cartesia_fake)
    data["stt"]["language"] = "tlh"  # a language Deepgram does not have
    data["llm"]["api_key"] = "wrong"
    data["tts"]["cartesia_url"] = "http://127.0.0.1:9"  # nothing listens there
    results = await check_providers(config(data))
    assert not any(r.ok for r in results)
    stt, llm, tts = (r.detail for r in results)
    assert "[stt] language" in stt
    assert "OPENAI_API_KEY" in llm
    assert "[tts] cartesia_url" in tts


async def test_the_chain_is_checked_provider_by_provider(
    deepgram_fake: DeepgramFake, openai_fake: OpenAiFake, cartesia_fake: CartesiaFake
) -> None:
    openai_fake.quota_exhausted = True
    data = sections(deepgram_fake, openai_fake, cartesia_fake)
    data["llm"]["fallback"] = ["scripted"]
    results = await check_providers(config(data))
    llm = [(r.provider, r.ok) for r in results if r.stage == "llm"]
    assert llm == [("openai", False), ("scripted", True)]
    assert "quota" in next(r.detail for r in results if r.provider == "openai")


async def test_the_command_exits_1_on_a_failure_and_0_when_all_work(
    deepgram_fake: DeepgramFake,
    openai_fake: OpenAiFake,
    cartesia_fake: CartesiaFake,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = sections(deepgram_fake, openai_fake, cartesia_fake)
    path = tmp_path / "config.toml"
    toml = "\n".join(
        f"[{section}]\n" + "\n".join(f'{key} = "{value}"' for key, value in values.items())
        for section, values in data.items()
    )
    path.write_text(toml, encoding="utf-8")
    # The command runs its own event loop: in a thread, while the fakes serve in this one.
    assert await anyio.to_thread.run_sync(main, ["check-providers", "--config", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "all providers answered"
    openai_fake.fail_status = 401
    assert await anyio.to_thread.run_sync(main, ["check-providers", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "OPENAI_API_KEY" in out and out.endswith("1 provider(s) failed\n")


async def test_a_missing_key_names_its_variable() -> None:
    results = await check_providers(config({"stt": {"provider": "deepgram"}}))
    (stt,) = [r for r in results if r.stage == "stt"]
    assert not stt.ok and "DEEPGRAM_API_KEY" in stt.detail
    assert all(r.ok for r in results if r.stage != "stt")  # the local LLM and TTS still answer


async def test_a_profiles_own_chains_are_checked_too(
    deepgram_fake: DeepgramFake, openai_fake: OpenAiFake, cartesia_fake: CartesiaFake
) -> None:
    # sam's LLM is another model of the same server; lee's points where nothing listens.
    data: dict[str, Any] = sections(deepgram_fake, openai_fake, cartesia_fake)
    data["agents"] = {
        "sam": {"identity": "agent-sam", "llm": {"model": "sam-model"}},
        "lee": {"identity": "agent-lee", "llm": {"base_url": "http://127.0.0.1:9/v1"}},
        "ann": {"identity": "agent-ann"},  # the shared chains: nothing more to check
    }
    results = await check_providers(config(data))
    assert [(r.stage, r.provider, r.ok) for r in results] == [
        ("stt", "deepgram", True),
        ("llm", "openai", True),
        ("tts", "cartesia", True),
        ("agents.sam.llm", "openai", True),
        ("agents.lee.llm", "openai", False),
    ]
    assert [r["model"] for r in openai_fake.requests][-1] == "sam-model"
    assert "[agents.lee.llm] base_url" in results[-1].detail
    out = io.StringIO()
    render(results, out)
    assert "agents.lee.llm  openai    FAILED" in out.getvalue()
