"""OpenAiLlm through the openai SDK against the wire-protocol fake."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from actors import ProviderConnectionError, ProviderError, ProviderStatusError, ProviderTimeoutError
from actors.providers import ChatMessage, FallbackLlm
from actors.providers.openai_llm import OpenAiLlm
from tests.fakes.openai_fake import OpenAiFake

HISTORY = (
    ChatMessage("user", "hi", speaker="alice@example.com"),
    ChatMessage("assistant", "Hello!"),
    ChatMessage("user", "what time is it"),
)


Make = Callable[..., OpenAiLlm]


@pytest.fixture
async def make(openai_fake: OpenAiFake) -> AsyncIterator[Make]:
    """Build providers aimed at the fake; their HTTP clients are closed after the test."""
    built: list[OpenAiLlm] = []

    def build(**kwargs: Any) -> OpenAiLlm:
        # Any: a test overrides whichever of OpenAiLlm's options it is about.
        options: dict[str, Any] = {
            "api_key": openai_fake.api_key,
            "model": "gpt-fake",
            "base_url": openai_fake.base_url,
            "instructions": "Be brief.",
            "timeout_s": 5.0,
        }
        options.update(kwargs)
        built.append(OpenAiLlm(**options))
        return built[-1]

    yield build
    for llm in built:
        await llm.aclose()


async def collect(llm: OpenAiLlm, **kwargs: str) -> list[str]:
    return [delta async for delta in llm.complete(HISTORY, **kwargs)]


async def test_streams_the_reply_token_by_token(openai_fake: OpenAiFake, make: Make) -> None:
    openai_fake.replies = ["It is noon. Anything else?"]
    deltas = await collect(make())
    assert deltas == ["It ", "is ", "noon. ", "Anything ", "else?"]


async def test_the_request_carries_model_prompt_and_speakers(
    openai_fake: OpenAiFake, make: Make
) -> None:
    assert "".join(await collect(make())) == "Echo: what time is it"
    (body,) = openai_fake.requests
    assert openai_fake.auth_headers == [f"Bearer {openai_fake.api_key}"]
    assert body["model"] == "gpt-fake" and body["stream"] is True
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi", "name": "alice_example_com"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "what time is it"},
    ]


async def test_instructions_override(openai_fake: OpenAiFake, make: Make) -> None:
    await collect(make(), instructions="Speak French.")
    assert openai_fake.requests[0]["messages"][0] == {"role": "system", "content": "Speak French."}


async def test_bad_key_is_final(make: Make) -> None:
    llm = make(api_key="wrong")
    with pytest.raises(ProviderStatusError) as caught:
        await collect(llm)
    assert caught.value.status == 401 and not caught.value.retryable
    assert caught.value.vendor == "openai"


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (400, False)])
async def test_error_statuses(
    openai_fake: OpenAiFake, make: Make, status: int, retryable: bool
) -> None:
    openai_fake.fail_status = status
    with pytest.raises(ProviderStatusError) as caught:
        await collect(make())
    assert caught.value.status == status and caught.value.retryable is retryable
    assert len(openai_fake.requests) == 1  # the SDK's own retries are off


async def test_dropped_stream_is_a_connection_error(openai_fake: OpenAiFake, make: Make) -> None:
    openai_fake.replies = ["one two three four five"]
    openai_fake.drop_after_tokens = 2
    received: list[str] = []
    with pytest.raises(ProviderConnectionError):
        async for delta in make().complete(HISTORY):
            received.append(delta)
    assert received == ["one ", "two "]


async def test_error_event_in_the_stream(openai_fake: OpenAiFake, make: Make) -> None:
    openai_fake.error_after_tokens = 1
    with pytest.raises(ProviderError, match="openai failed"):
        await collect(make())


async def test_slow_headers_time_out(openai_fake: OpenAiFake, make: Make) -> None:
    openai_fake.headers_delay_s = 2.0
    with pytest.raises(ProviderTimeoutError) as caught:
        await collect(make(timeout_s=0.2))
    assert caught.value.retryable


async def test_stalled_stream_times_out(openai_fake: OpenAiFake, make: Make) -> None:
    openai_fake.first_token_delay_s = 2.0
    with pytest.raises(ProviderTimeoutError):
        await collect(make(timeout_s=0.2))


async def test_unreachable_is_a_connection_error(make: Make) -> None:
    llm = make(base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ProviderConnectionError):
        await collect(llm)


# -- servers that are OpenAI-compatible, but not OpenAI -----------------------------------------

ROOM = (
    ChatMessage("assistant", "Hello! How can I help?"),  # the greeting comes first
    ChatMessage("user", "hi", speaker="alice"),
    ChatMessage("user", "and hello from me", speaker="bob"),  # two people in a row
    ChatMessage("assistant", "Hi both."),
    ChatMessage("user", "what time is it", speaker="alice"),
)


async def test_a_server_refusing_name_is_final_and_names_the_compat_setting(
    openai_fake: OpenAiFake, make: Make
) -> None:
    openai_fake.refuse_name = True
    with pytest.raises(ProviderStatusError, match=r"\[llm\] compat") as caught:
        await collect(make())
    assert caught.value.status == 400 and not caught.value.retryable
    assert openai_fake.refusals == ["'messages.1' : property 'name' is unsupported"]


@pytest.mark.parametrize("status", [400, 500])
async def test_strict_templates_refuse_what_a_room_sends(
    openai_fake: OpenAiFake, make: Make, status: int
) -> None:
    openai_fake.strict_roles, openai_fake.strict_roles_status = True, status
    with pytest.raises(ProviderStatusError, match=r"\[llm\] compat"):
        _ = [d async for d in make().complete(ROOM)]
    assert openai_fake.refusals[0].startswith("Conversation roles must alternate")


async def test_strict_compat_alternates_and_keeps_who_spoke(
    openai_fake: OpenAiFake, make: Make
) -> None:
    openai_fake.strict_roles = openai_fake.refuse_name = True
    reply = "".join([d async for d in make(compat="strict").complete(ROOM)])
    assert reply == "Echo: alice: what time is it"
    assert openai_fake.refusals == []
    assert openai_fake.requests[0]["messages"] == [
        {
            "role": "system",
            "content": 'Be brief.\n\nYou opened the call by saying: "Hello! How can I help?"',
        },
        {"role": "user", "content": "alice: hi\nbob: and hello from me"},
        {"role": "assistant", "content": "Hi both."},
        {"role": "user", "content": "alice: what time is it"},
    ]


@pytest.mark.parametrize("field_name", ["reasoning_content", "reasoning"])
async def test_reasoning_is_not_spoken_but_keeps_the_first_token_timeout_at_bay(
    openai_fake: OpenAiFake, make: Make, field_name: str
) -> None:
    # 6 reasoning deltas 0.1 s apart: 0.5 s of thinking against a 0.25 s first-token timeout.
    openai_fake.reasoning_deltas, openai_fake.reasoning_delay_s = 6, 0.1
    openai_fake.reasoning_field = field_name
    openai_fake.replies = ["It is noon."]
    chain = FallbackLlm([make()], timeout_s=0.25)
    deltas = [d async for d in chain.complete(HISTORY)]
    assert deltas[:6] == [""] * 6
    assert "".join(deltas) == "It is noon."


async def test_a_short_retry_after_is_waited_once(openai_fake: OpenAiFake, make: Make) -> None:
    openai_fake.rate_limited, openai_fake.retry_after_s = 1, 0.4
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    openai_fake.replies = ["Sorry for the wait."]
    assert "".join(await collect(make(sleep=sleep))) == "Sorry for the wait."
    assert waits == [pytest.approx(0.4)]
    assert len(openai_fake.requests) == 2


async def test_a_long_retry_after_goes_to_the_fallback_at_once(
    openai_fake: OpenAiFake, make: Make
) -> None:
    openai_fake.rate_limited, openai_fake.retry_after_s = 1, 20.0
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with pytest.raises(ProviderStatusError) as caught:
        await collect(make(sleep=sleep))
    assert caught.value.status == 429 and caught.value.retryable
    assert waits == [] and len(openai_fake.requests) == 1


async def test_an_exhausted_quota_is_final(openai_fake: OpenAiFake, make: Make) -> None:
    openai_fake.quota_exhausted = True
    with pytest.raises(ProviderStatusError, match="quota") as caught:
        await collect(make())
    assert caught.value.status == 429 and not caught.value.retryable
    assert len(openai_fake.requests) == 1


@pytest.mark.parametrize("reason", ["length", "content_filter"])
async def test_a_cut_reply_ends_with_what_was_said_and_logs_why(
    openai_fake: OpenAiFake, make: Make, caplog: pytest.LogCaptureFixture, reason: str
) -> None:
    openai_fake.replies = ["One two three four five."]
    openai_fake.cut_after_tokens, openai_fake.finish_reason = 3, reason
    with caplog.at_level(logging.WARNING, logger="actors.providers.openai_llm"):
        deltas = await collect(make())
    assert deltas == ["One ", "two ", "three "]
    (record,) = caplog.records
    assert record.getMessage() == "openai reply cut short by the model"
    assert record.__dict__["finish_reason"] == reason


async def test_a_keyless_local_server_gets_no_authorization(
    openai_fake: OpenAiFake, make: Make
) -> None:
    openai_fake.require_key = False  # Ollama, vLLM or llama.cpp without --api-key
    assert "".join(await collect(make(api_key=None))) == "Echo: what time is it"
    assert openai_fake.auth_headers == [""]


async def test_the_compat_hint_only_when_strict_could_help(
    openai_fake: OpenAiFake, make: Make
) -> None:
    openai_fake.fail_status = 500  # an outage, for a request even a strict server takes
    with pytest.raises(ProviderStatusError) as caught:
        _ = [d async for d in make().complete([ChatMessage("user", "ping")])]
    assert "compat" not in str(caught.value) and caught.value.retryable
