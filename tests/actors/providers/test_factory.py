"""Chains built from settings, against the wire-protocol fakes and the local providers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from actors import ConfigError
from actors.providers import (
    ChatMessage,
    LlmSettings,
    SpeechEventKind,
    SttSettings,
    TtsSettings,
    build_llm,
    build_stt,
    build_tts,
)
from tests.actors.providers.audio import silence, tone
from tests.fakes.cartesia_fake import CartesiaFake
from tests.fakes.deepgram_fake import DeepgramFake
from tests.fakes.openai_fake import OpenAiFake


def errors(vendor: str, stage: str) -> float:
    value = REGISTRY.get_sample_value(
        "voice_supervisor_provider_errors_total", {"vendor": vendor, "stage": stage}
    )
    return value or 0.0


def test_default_chains_are_local() -> None:
    assert build_stt(SttSettings()).name == "local"
    assert build_llm(LlmSettings()).name == "scripted"
    tts = build_tts(TtsSettings(sample_rate=16_000))
    assert tts.name == "local" and tts.sample_rate == 16_000


@pytest.mark.parametrize(
    ("build", "settings", "variable"),
    [
        (build_stt, SttSettings(provider="deepgram"), "DEEPGRAM_API_KEY"),
        (build_llm, LlmSettings(provider="openai"), "OPENAI_API_KEY"),
        (build_tts, TtsSettings(provider="cartesia", voice="v"), "CARTESIA_API_KEY"),
    ],
)
def test_a_vendor_without_a_key_is_a_config_error(
    build: Callable[[Any], object], settings: object, variable: str
) -> None:
    # Any: each row pairs a builder with its own settings class.
    with pytest.raises(ConfigError, match=variable):
        build(settings)


def test_a_local_voice_that_needs_a_download_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tts.voice"):
        build_tts(TtsSettings(voice="emma"))


async def test_openai_down_scripted_answers(openai_fake: OpenAiFake) -> None:
    openai_fake.fail_status = 500
    before = errors("openai", "llm")
    llm = build_llm(
        LlmSettings(
            provider="openai",
            fallback=("scripted",),
            base_url=openai_fake.base_url,
            api_key=SecretStr(openai_fake.api_key),
            timeout_s=2.0,
        )
    )
    try:
        with anyio.fail_after(5):
            reply = "".join([t async for t in llm.complete([ChatMessage("user", "hello")])])
    finally:
        await llm.aclose()
    assert reply == "You said: hello"
    assert errors("openai", "llm") == before + 1


async def test_openai_answers_through_the_chain(openai_fake: OpenAiFake) -> None:
    llm = build_llm(
        LlmSettings(
            provider="openai",
            base_url=openai_fake.base_url,
            api_key=SecretStr(openai_fake.api_key),
            instructions="Be kind.",
        )
    )
    try:
        reply = "".join([t async for t in llm.complete([ChatMessage("user", "hello")])])
    finally:
        await llm.aclose()
    assert reply == "Echo: hello"
    assert openai_fake.requests[0]["messages"][0]["content"] == "Be kind."


async def test_cartesia_stalls_local_voice_answers(cartesia_fake: CartesiaFake) -> None:
    cartesia_fake.first_chunk_delay_s = 5.0
    tts = build_tts(
        TtsSettings(
            provider="cartesia",
            voice="voice-1",
            fallback=("local",),
            cartesia_url=cartesia_fake.url,
            api_key=SecretStr(cartesia_fake.api_key),
            sample_rate=16_000,
            timeout_s=1.0,
        )
    )
    try:
        # Loading hibari (~0.5 s cold) may exceed the timeout: warm up first, as a daemon should.
        await tts.warm_up()
        with anyio.fail_after(10):
            audio = b"".join([c async for c in tts.synthesize("Sorry, one moment.")])
    finally:
        await tts.aclose()
    assert len(audio) / 2 / 16_000 > 0.5  # hibari spoke it
    assert cartesia_fake.cancels == [cartesia_fake.requests[0]["context_id"]]


async def test_deepgram_refuses_local_listens(deepgram_fake: DeepgramFake) -> None:
    stt = build_stt(
        SttSettings(
            provider="deepgram",
            fallback=("local",),
            deepgram_url=deepgram_fake.url,
            api_key=SecretStr("wrong-key"),
        )
    )
    with anyio.fail_after(10):
        async with stt.stream() as stream:
            await stream.send(silence(0.2))
            await stream.end_input()
            assert [e async for e in stream.events()] == []
    assert deepgram_fake.connections == 0  # refused at the handshake


async def test_deepgram_through_the_chain(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.transcripts = ["good morning"]
    stt = build_stt(
        SttSettings(
            provider="deepgram",
            deepgram_url=deepgram_fake.url,
            api_key=SecretStr(deepgram_fake.api_key),
            endpointing_ms=300,
        )
    )
    with anyio.fail_after(10):
        async with stt.stream() as stream:
            await stream.send(tone(0.4) + silence(0.5))
            await stream.end_input()
            finals = [e.text async for e in stream.events() if e.kind is SpeechEventKind.FINAL]
    assert finals == ["good morning"]


async def test_deepgram_slow_to_answer_local_listens(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.handshake_delay_s = 1.0
    stt = build_stt(
        SttSettings(
            provider="deepgram",
            fallback=("local",),
            deepgram_url=deepgram_fake.url,
            api_key=SecretStr(deepgram_fake.api_key),
            timeout_s=0.2,
        )
    )
    before = errors("deepgram", "stt")
    with anyio.fail_after(10):
        async with stt.stream() as stream:
            await stream.end_input()
            assert [e async for e in stream.events()] == []
    assert errors("deepgram", "stt") == before + 1


async def test_a_keyless_local_llm_server_needs_no_api_key(openai_fake: OpenAiFake) -> None:
    openai_fake.require_key = False
    llm = build_llm(LlmSettings(provider="openai", base_url=openai_fake.base_url))
    try:
        reply = "".join([t async for t in llm.complete([ChatMessage("user", "hi")])])
    finally:
        await llm.aclose()
    assert reply == "Echo: hi" and openai_fake.auth_headers == [""]


def test_openai_itself_still_needs_a_key() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        build_llm(LlmSettings(provider="openai", base_url=None))
