"""OpenAiLlm through the openai SDK against the wire-protocol fake."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from actors import ProviderConnectionError, ProviderError, ProviderStatusError, ProviderTimeoutError
from actors.providers import ChatMessage
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

    def build(**kwargs: object) -> OpenAiLlm:
        options: dict[str, object] = {
            "api_key": openai_fake.api_key,
            "model": "gpt-fake",
            "base_url": openai_fake.base_url,
            "instructions": "Be brief.",
            "timeout_s": 5.0,
        }
        options.update(kwargs)
        built.append(OpenAiLlm(**options))  # type: ignore[arg-type]  # test-only kwargs
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
