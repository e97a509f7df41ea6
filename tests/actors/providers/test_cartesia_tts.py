"""CartesiaTts through the cartesia SDK against the wire-protocol fake."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from actors import ProviderConnectionError, ProviderStatusError, ProviderTimeoutError
from actors.providers import FallbackTts
from actors.providers.cartesia_tts import CartesiaTts
from tests.fakes.cartesia_fake import CartesiaFake
from tests.fakes.instant import ToneTts

TEXT = "Hello there, how are you?"

Make = Callable[..., CartesiaTts]


@pytest.fixture
async def make(cartesia_fake: CartesiaFake) -> AsyncIterator[Make]:
    """Build providers aimed at the fake; their sockets are closed after the test."""
    built: list[CartesiaTts] = []

    def build(**kwargs: Any) -> CartesiaTts:
        # Any: a test overrides whichever of CartesiaTts's options it is about.
        options: dict[str, Any] = {
            "api_key": cartesia_fake.api_key,
            "voice": "voice-123",
            "sample_rate": 16_000,
            "base_url": cartesia_fake.url,
            "timeout_s": 2.0,
        }
        options.update(kwargs)
        built.append(CartesiaTts(**options))
        return built[-1]

    yield build
    for tts in built:
        await tts.aclose()


async def speak(tts: CartesiaTts, text: str = TEXT, **kwargs: str) -> bytes:
    with anyio.fail_after(10):
        return b"".join([chunk async for chunk in tts.synthesize(text, **kwargs)])


async def test_audio_of_the_expected_length(cartesia_fake: CartesiaFake, make: Make) -> None:
    pcm = await speak(make())
    assert len(pcm) == int(len(TEXT) * cartesia_fake.seconds_per_char * 16_000) * 2
    assert len(cartesia_fake.done) == 1


async def test_the_request_is_what_cartesia_expects(
    cartesia_fake: CartesiaFake, make: Make
) -> None:
    await speak(make(), language="en-US")
    (request,) = cartesia_fake.requests
    assert cartesia_fake.auth_headers == [f"Bearer {cartesia_fake.api_key}"]
    assert request["model_id"] == "sonic-3"
    assert request["voice"] == {"id": "voice-123"}
    assert request["output_format"] == {
        "container": "raw",
        "encoding": "pcm_s16le",
        "sample_rate": 16_000,
    }
    assert request["transcript"] == TEXT
    assert request["continue"] is False
    assert request["language"] == "en"
    assert request["context_id"]


async def test_voice_override_and_one_socket_for_many_replies(
    cartesia_fake: CartesiaFake, make: Make
) -> None:
    tts = make()
    await speak(tts, "First.")
    await speak(tts, "Second.", voice="voice-456")
    assert cartesia_fake.connections == 1
    assert [r["voice"]["id"] for r in cartesia_fake.requests] == ["voice-123", "voice-456"]
    assert len({r["context_id"] for r in cartesia_fake.requests}) == 2


async def test_stopping_early_cancels_the_context(cartesia_fake: CartesiaFake, make: Make) -> None:
    cartesia_fake.chunk_delay_s = 0.05
    tts = make()
    replies = tts.synthesize("A long reply that the user interrupts after the first chunk.")
    assert await anext(replies)
    await replies.aclose()
    with anyio.fail_after(5):
        await cartesia_fake.cancel_seen.wait()
    assert cartesia_fake.cancels == [cartesia_fake.requests[0]["context_id"]]
    # The socket goes back to the pool; the next reply skips what was left of the old context.
    assert len(await speak(tts, "Next.")) == int(5 * 0.05 * 16_000) * 2
    assert cartesia_fake.connections == 1


async def test_a_socket_closed_while_idle_is_replaced(
    cartesia_fake: CartesiaFake, make: Make
) -> None:
    tts = make()
    await speak(tts, "First.")
    await cartesia_fake.disconnect_all()
    assert await speak(tts, "Second.")
    assert cartesia_fake.connections == 2


async def test_bad_key_is_final(make: Make) -> None:
    with pytest.raises(ProviderStatusError) as caught:
        await speak(make(api_key="wrong"))
    assert caught.value.status == 401 and not caught.value.retryable
    assert caught.value.vendor == "cartesia"


async def test_handshake_server_error_is_retryable(cartesia_fake: CartesiaFake, make: Make) -> None:
    cartesia_fake.fail_status = 502
    with pytest.raises(ProviderStatusError) as caught:
        await speak(make())
    assert caught.value.status == 502 and caught.value.retryable


async def test_error_message_is_a_status_error(cartesia_fake: CartesiaFake, make: Make) -> None:
    cartesia_fake.error_status = 400
    with pytest.raises(ProviderStatusError) as caught:
        await speak(make())
    assert caught.value.status == 400 and not caught.value.retryable


async def test_dropped_socket_is_a_connection_error(
    cartesia_fake: CartesiaFake, make: Make
) -> None:
    cartesia_fake.drop_after_chunks = 2
    received: list[bytes] = []
    with pytest.raises(ProviderConnectionError):
        async for chunk in make().synthesize(TEXT):
            received.append(chunk)
    assert len(received) == 2


async def test_stalled_audio_times_out(cartesia_fake: CartesiaFake, make: Make) -> None:
    cartesia_fake.first_chunk_delay_s = 2.0
    with pytest.raises(ProviderTimeoutError):
        await speak(make(timeout_s=0.2))


async def test_unreachable_is_a_connection_error(make: Make) -> None:
    with pytest.raises(ProviderConnectionError):
        await speak(make(base_url="http://127.0.0.1:9"))


# -- Cartesia as it behaves -------------------------------------------------------------------


async def test_an_error_without_a_context_fails_the_request_in_flight_at_once(
    cartesia_fake: CartesiaFake, make: Make
) -> None:
    cartesia_fake.error_status, cartesia_fake.error_without_context = 429, True
    with anyio.fail_after(1):  # well before timeout_s (2 s): no waiting for a chunk
        with pytest.raises(ProviderStatusError) as caught:
            await speak(make(timeout_s=2.0))
    assert caught.value.status == 429 and caught.value.retryable


async def test_over_the_concurrency_limit_the_next_provider_speaks_at_once(
    cartesia_fake: CartesiaFake, make: Make
) -> None:
    cartesia_fake.max_contexts = 1
    cartesia_fake.chunk_delay_s = 0.05
    busy = make().synthesize("A long reply that holds the only context of the plan.")
    assert await anext(busy)  # one context speaking, on its own socket
    chain = FallbackTts([make(sample_rate=24_000), ToneTts()], timeout_s=2.0)
    try:
        with anyio.fail_after(1):
            audio = [chunk async for chunk in chain.synthesize("Hello there.")]
    finally:
        await busy.aclose()
    assert audio  # the fallback's
    assert cartesia_fake.connections == 2


async def test_a_socket_closed_idle_by_cartesia_is_replaced(
    cartesia_fake: CartesiaFake, make: Make
) -> None:
    cartesia_fake.idle_timeout_s = 0.2  # 5 minutes at Cartesia
    tts = make()
    await speak(tts, "First.")
    with anyio.fail_after(5):
        await cartesia_fake.idle_closed.wait()
    assert len(await speak(tts, "Second.")) == int(7 * 0.05 * 16_000) * 2
    assert cartesia_fake.connections == 2 and cartesia_fake.idle_closes == 1
