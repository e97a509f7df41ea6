"""DeepgramStt through deepgram-sdk 7 against the wire-protocol fake."""

from __future__ import annotations

import anyio
import pytest

from actors import ProviderConnectionError, ProviderError, ProviderStatusError
from actors.providers import SpeechEvent, SpeechEventKind
from actors.providers.deepgram import DeepgramStt
from tests.actors.providers.audio import silence, tone
from tests.fakes.deepgram_fake import DeepgramFake

CHUNK = 640  # 20 ms


def provider(fake: DeepgramFake, *, keepalive_s: float = 4.0) -> DeepgramStt:
    return DeepgramStt(
        api_key=fake.api_key, base_url=fake.url, endpointing_ms=300, keepalive_s=keepalive_s
    )


async def converse(stt: DeepgramStt, audio: bytes) -> list[SpeechEvent]:
    """Send ``audio``, end the input, and collect every event until the stream ends."""
    events: list[SpeechEvent] = []
    with anyio.fail_after(10):
        async with stt.stream() as stream, anyio.create_task_group() as tg:

            async def feed() -> None:
                for offset in range(0, len(audio), CHUNK):
                    await stream.send(audio[offset : offset + CHUNK])
                await stream.end_input()

            tg.start_soon(feed)
            events = [event async for event in stream.events()]
    return events


async def test_turns_become_speech_events(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.transcripts = ["hello there", "what time is it"]
    audio = silence(0.2) + tone(0.6) + silence(0.5) + tone(0.4) + silence(0.5)
    events = await converse(provider(deepgram_fake), audio)
    kinds = [e.kind for e in events]
    assert kinds == [
        SpeechEventKind.START_OF_SPEECH,
        SpeechEventKind.INTERIM,
        SpeechEventKind.FINAL,
        SpeechEventKind.END_OF_SPEECH,
        SpeechEventKind.START_OF_SPEECH,
        SpeechEventKind.FINAL,
        SpeechEventKind.END_OF_SPEECH,
    ]
    assert [e.text for e in events if e.kind is SpeechEventKind.FINAL] == [
        "hello there",
        "what time is it",
    ]
    assert events[1].text == "hello"


async def test_the_request_is_what_deepgram_expects(deepgram_fake: DeepgramFake) -> None:
    await converse(provider(deepgram_fake), silence(0.1))
    assert deepgram_fake.auth_headers == [f"Token {deepgram_fake.api_key}"]
    query = deepgram_fake.queries[0]
    assert query["model"] == "nova-3"
    assert query["encoding"] == "linear16"
    assert query["sample_rate"] == "16000"
    assert query["channels"] == "1"
    assert query["language"] == "en-US"
    assert query["interim_results"] == "true"
    assert query["endpointing"] == "300"
    assert query["utterance_end_ms"] == "1000"
    assert query["vad_events"] == "true"
    assert deepgram_fake.finalizes == 1 and deepgram_fake.close_streams == 1
    assert deepgram_fake.audio_bytes == len(silence(0.1))


async def test_end_input_flushes_a_turn_in_progress(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.transcripts = ["cut short"]
    events = await converse(provider(deepgram_fake), tone(0.3))
    assert [e.text for e in events if e.kind is SpeechEventKind.FINAL] == ["cut short"]


async def test_language_override(deepgram_fake: DeepgramFake) -> None:
    stt = provider(deepgram_fake)
    async with stt.stream(language="fr") as stream:
        await stream.end_input()
        assert [e async for e in stream.events()] == []
    assert deepgram_fake.queries[0]["language"] == "fr"


async def test_keepalive_while_nobody_speaks(deepgram_fake: DeepgramFake) -> None:
    stt = provider(deepgram_fake, keepalive_s=0.05)
    async with stt.stream():
        with anyio.fail_after(5):
            await deepgram_fake.keepalive_seen.wait()


async def test_bad_key_is_a_final_status_error(deepgram_fake: DeepgramFake) -> None:
    stt = DeepgramStt(api_key="wrong", base_url=deepgram_fake.url)
    with pytest.raises(ProviderStatusError) as caught:
        async with stt.stream():
            pass
    assert caught.value.status == 401
    assert not caught.value.retryable
    assert caught.value.vendor == "deepgram"


async def test_server_error_is_retryable(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.fail_status = 503
    with pytest.raises(ProviderStatusError) as caught:
        async with provider(deepgram_fake).stream():
            pass
    assert caught.value.status == 503
    assert caught.value.retryable


async def test_unreachable_is_a_connection_error() -> None:
    stt = DeepgramStt(api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(ProviderConnectionError) as caught:
        async with stt.stream():
            pass
    assert caught.value.retryable


async def test_dropped_connection_ends_the_stream_with_an_error(
    deepgram_fake: DeepgramFake,
) -> None:
    deepgram_fake.drop_after_s = 0.5
    with pytest.raises(ProviderConnectionError, match="read results|send audio"):
        await converse(provider(deepgram_fake), tone(0.3) + silence(2.0))


async def test_error_message_ends_the_stream_with_an_error(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.error_after_s = 0.2
    with pytest.raises(ProviderError, match="deepgram reported an error"):
        await converse(provider(deepgram_fake), silence(1.0))
