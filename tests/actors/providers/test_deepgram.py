"""DeepgramStt through deepgram-sdk 7 against the wire-protocol fake, which behaves as the
service does (multi-segment finals, late UtteranceEnd, ``duration`` spanning silence, idle
close, 400 for a language the model does not have)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from actors import ProviderConnectionError, ProviderError, ProviderStatusError
from actors.providers import FallbackStt, SpeechEvent, SpeechEventKind
from actors.providers.deepgram import DeepgramStt
from tests.actors.providers.audio import silence, tone
from tests.fakes.deepgram_fake import DeepgramFake
from tests.fakes.instant import InstantStt

CHUNK = 640  # 20 ms


def provider(
    fake: DeepgramFake,
    *,
    keepalive_s: float = 4.0,
    model: str = "nova-3",
    language: str = "en-US",
) -> DeepgramStt:
    return DeepgramStt(
        api_key=fake.api_key,
        base_url=fake.url,
        endpointing_ms=300,
        turn_detection="silence",  # every speech_final ends the turn (see test_deepgram_turns)
        keepalive_s=keepalive_s,
        model=model,
        language=language,
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


def finals(events: list[SpeechEvent]) -> list[str]:
    return [e.text for e in events if e.kind is SpeechEventKind.FINAL]


def sent_results(fake: DeepgramFake) -> list[dict[str, Any]]:
    return [m for m in fake.sent if m["type"] == "Results"]


async def test_turns_become_speech_events(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.transcripts = ["hello there", "what time is it"]
    audio = silence(0.2) + tone(0.6) + silence(0.5) + tone(0.4) + silence(0.5)
    events = await converse(provider(deepgram_fake), audio)
    kinds = [e.kind for e in events]
    assert kinds[0] is SpeechEventKind.START_OF_SPEECH
    assert kinds.count(SpeechEventKind.START_OF_SPEECH) == 2
    assert finals(events) == ["hello there", "what time is it"]
    assert events[1] == SpeechEvent(SpeechEventKind.INTERIM, "hello", events[1].speech_duration_s)
    # The pause (0.5 s) is shorter than utterance_end_ms (1 s): no UtteranceEnd in between.
    assert SpeechEventKind.END_OF_SPEECH not in kinds


async def test_a_turn_is_every_final_segment_concatenated(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.transcripts = ["please book a table for two tonight"]
    events = await converse(provider(deepgram_fake), tone(1.6) + silence(0.5))
    segments = [r for r in sent_results(deepgram_fake) if r["is_final"] and not r["from_finalize"]]
    assert len(segments) >= 3 and [r["speech_final"] for r in segments][-1] is True
    assert finals(events) == ["please book a table for two tonight"]
    interims = [e.text for e in events if e.kind is SpeechEventKind.INTERIM]
    assert interims[-1].startswith("please book")  # finals so far, then the partial segment


async def test_an_empty_speech_final_still_ends_the_turn(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.empty_speech_final = True
    deepgram_fake.transcripts = ["turn on the lights", "thanks"]
    audio = tone(0.8) + silence(0.5) + tone(0.3) + silence(0.5)
    events = await converse(provider(deepgram_fake), audio)
    speech_finals = [r for r in sent_results(deepgram_fake) if r["speech_final"]]
    assert speech_finals and all(
        r["channel"]["alternatives"][0]["transcript"] == "" for r in speech_finals
    )
    assert finals(events) == ["turn on the lights", "thanks"]


async def test_without_speech_final_the_utterance_end_closes_the_turn(
    deepgram_fake: DeepgramFake,
) -> None:
    deepgram_fake.speech_final = False  # a noisy line: endpointing never fires
    deepgram_fake.transcripts = ["what is", "the weather"]
    audio = tone(0.6) + silence(0.5) + tone(0.4) + silence(1.5)
    events = await converse(provider(deepgram_fake), audio)
    assert not any(r["speech_final"] for r in sent_results(deepgram_fake))
    # Both runs of speech are one turn, ended by the UtteranceEnd before the input ended.
    kinds = [e.kind for e in events if e.kind is not SpeechEventKind.INTERIM]
    assert kinds[-2:] == [SpeechEventKind.FINAL, SpeechEventKind.END_OF_SPEECH]
    assert finals(events) == ["what is the weather"]


async def test_utterance_end_comes_utterance_end_ms_after_the_last_word(
    deepgram_fake: DeepgramFake,
) -> None:
    deepgram_fake.transcripts = ["hello"]
    events = await converse(provider(deepgram_fake), tone(0.4) + silence(1.5))
    (end,) = [m for m in deepgram_fake.sent if m["type"] == "UtteranceEnd"]
    (final,) = [r for r in sent_results(deepgram_fake) if r["speech_final"]]
    words = final["channel"]["alternatives"][0]["words"]
    assert end["last_word_end"] == pytest.approx(words[-1]["end"], abs=0.05)
    kinds = [e.kind for e in events if e.kind is not SpeechEventKind.INTERIM]
    assert kinds == [
        SpeechEventKind.START_OF_SPEECH,
        SpeechEventKind.FINAL,
        SpeechEventKind.END_OF_SPEECH,
    ]


async def test_speech_duration_counts_speech_not_the_silence_before_it(
    deepgram_fake: DeepgramFake,
) -> None:
    # A "yeah" after 3 s of silence: Deepgram's duration spans all of it.
    deepgram_fake.transcripts = ["yeah"]
    deepgram_fake.silence_results_s = None
    events = await converse(provider(deepgram_fake), silence(3.0) + tone(0.3) + silence(0.5))
    (interim,) = [r for r in sent_results(deepgram_fake) if not r["is_final"]]
    assert float(interim["duration"]) > 3.0
    durations = [e.speech_duration_s for e in events if e.kind is SpeechEventKind.INTERIM]
    assert durations and all(0.1 < d < 0.5 for d in durations), durations


async def test_speech_duration_restarts_after_each_pause(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.transcripts = ["one two three", "ok"]
    audio = tone(1.2) + silence(0.5) + tone(0.3) + silence(0.5)
    events = await converse(provider(deepgram_fake), audio)
    durations = [e.speech_duration_s for e in events if e.kind is SpeechEventKind.INTERIM]
    assert max(durations) > 0.9  # the long turn, measured across its final segments
    assert durations[-1] < 0.5  # the short one after the pause, from its own start


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
    assert finals(events) == ["cut short"]


async def test_language_override(deepgram_fake: DeepgramFake) -> None:
    stt = provider(deepgram_fake)
    async with stt.stream(language="fr") as stream:
        await stream.end_input()
        assert [e async for e in stream.events()] == []
    assert deepgram_fake.queries[0]["language"] == "fr"


async def test_keepalive_keeps_a_quiet_stream_open(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.idle_timeout_s = 0.3
    stt = provider(deepgram_fake, keepalive_s=0.05)
    async with stt.stream():
        with anyio.fail_after(5):
            while deepgram_fake.keepalives < 12:  # 0.6 s of KeepAlives, twice the timeout
                await deepgram_fake.keepalive_seen.wait()
    assert deepgram_fake.idle_closes == 0


async def test_a_stream_left_quiet_is_closed_with_net_0001(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.idle_timeout_s = 0.2
    stt = provider(deepgram_fake, keepalive_s=60.0)
    with pytest.raises(ProviderConnectionError, match="NET-0001") as caught:
        with anyio.fail_after(5):
            async with stt.stream() as stream:
                async for _ in stream.events():
                    pass
    assert caught.value.retryable and deepgram_fake.idle_closes == 1


@pytest.mark.parametrize(
    ("option", "value", "setting"),
    [("language", "tlh", "[stt] language"), ("model", "nova-9", "[stt] deepgram_model")],
)
async def test_a_language_or_model_deepgram_lacks_is_final_and_names_the_setting(
    deepgram_fake: DeepgramFake,
    caplog: pytest.LogCaptureFixture,
    option: str,
    value: str,
    setting: str,
) -> None:
    stt = (
        provider(deepgram_fake, model=value)
        if option == "model"
        else provider(deepgram_fake, language=value)
    )
    with caplog.at_level(logging.ERROR, logger="actors.providers.deepgram"):
        with pytest.raises(ProviderStatusError) as caught:
            async with stt.stream():
                pass
    assert caught.value.status == 400 and not caught.value.retryable
    assert setting in str(caught.value)
    assert deepgram_fake.refusals and deepgram_fake.connections == 0
    (record,) = caplog.records
    assert setting in record.__dict__["setting"]
    assert getattr(record, option) == value


async def test_a_refused_language_goes_to_the_next_provider(
    deepgram_fake: DeepgramFake,
) -> None:
    chain = FallbackStt([provider(deepgram_fake, language="tlh"), InstantStt()], timeout_s=5)
    async with chain.stream() as stream:
        await stream.end_input()
        assert [e async for e in stream.events()] == []
    assert deepgram_fake.refusals and deepgram_fake.connections == 0


async def test_bad_key_is_a_final_status_error(deepgram_fake: DeepgramFake) -> None:
    stt = DeepgramStt(api_key="wrong", base_url=deepgram_fake.url)
    with pytest.raises(ProviderStatusError, match="DEEPGRAM_API_KEY") as caught:
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
