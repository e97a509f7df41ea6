from __future__ import annotations

import anyio
import numpy as np
import pytest
import soxr

from actors import ProviderError
from actors.providers import LocalStt, LocalTts, SpeechEvent, SpeechEventKind
from tests.actors.providers.audio import noise_burst, silence, speech, tone, words

QUESTION = "could you tell me what time the pharmacy opens tomorrow"
ORDER = "please turn off the lights in the kitchen"


@pytest.fixture(scope="module")
def stt() -> LocalStt:
    # One provider for the module: its pooled decoders load once (~0.5 s each).
    return LocalStt(endpointing_ms=500, min_speech_s=0.2, decoders=1)


async def recognise(stt: LocalStt, audio: bytes, *, chunk: int = 640) -> list[SpeechEvent]:
    """Feed ``audio`` as fast as the stream takes it, then end the input; all the events."""
    events: list[SpeechEvent] = []
    with anyio.fail_after(30):
        async with stt.stream() as stream, anyio.create_task_group() as tg:

            async def feed() -> None:
                for offset in range(0, len(audio), chunk):
                    await stream.send(audio[offset : offset + chunk])
                await stream.end_input()

            tg.start_soon(feed)
            events = [event async for event in stream.events()]
    return events


def kinds(events: list[SpeechEvent]) -> list[SpeechEventKind]:
    skipped = (SpeechEventKind.INTERIM, SpeechEventKind.PREFLIGHT)
    return [event.kind for event in events if event.kind not in skipped]


def overlap(expected: str, got: str) -> float:
    said = words(got)
    return sum(word in said for word in words(expected)) / len(words(expected))


async def test_local_tts_to_local_stt_round_trip(stt: LocalStt) -> None:
    """The local voice (hibari, 24 kHz), resampled to 16 kHz with soxr, is understood."""
    tts = LocalTts(sample_rate=24_000)
    pcm24 = b"".join([chunk async for chunk in tts.synthesize(QUESTION)])
    samples = np.frombuffer(pcm24, dtype="<i2")
    pcm16 = soxr.resample(samples, 24_000, 16_000).astype("<i2").tobytes()
    events = await recognise(stt, silence(0.5) + pcm16 + silence(1.0))
    assert kinds(events) == [
        SpeechEventKind.START_OF_SPEECH,
        SpeechEventKind.FINAL,
        SpeechEventKind.END_OF_SPEECH,
    ]
    final = next(e.text for e in events if e.kind is SpeechEventKind.FINAL)
    assert overlap(QUESTION, final) >= 0.8, final
    assert events[0].speech_duration_s >= 0.2


async def test_two_turns_and_interims(stt: LocalStt) -> None:
    audio = speech(QUESTION) + silence(0.8) + speech(ORDER) + silence(0.8)
    events = await recognise(stt, audio, chunk=3200)
    finals = [e.text for e in events if e.kind is SpeechEventKind.FINAL]
    assert len(finals) == 2
    assert overlap(QUESTION, finals[0]) >= 0.8, finals[0]
    assert overlap(ORDER, finals[1]) >= 0.8, finals[1]
    interims = [e for e in events if e.kind is SpeechEventKind.INTERIM]
    assert interims and all(e.text for e in interims)
    # Fed faster than real time, turn 2 may start before turn 1 is decoded; within a turn,
    # START_OF_SPEECH comes first and END_OF_SPEECH right after the FINAL.
    order = kinds(events)
    starts = [i for i, k in enumerate(order) if k is SpeechEventKind.START_OF_SPEECH]
    ends = [i for i, k in enumerate(order) if k is SpeechEventKind.FINAL]
    assert len(starts) == 2 and starts[0] < ends[0] and starts[1] < ends[1]
    assert [order[i + 1] for i in ends] == [SpeechEventKind.END_OF_SPEECH] * 2


async def test_end_input_finalises_an_unfinished_turn(stt: LocalStt) -> None:
    events = await recognise(stt, silence(0.3) + speech(ORDER))
    assert kinds(events) == [
        SpeechEventKind.START_OF_SPEECH,
        SpeechEventKind.FINAL,
        SpeechEventKind.END_OF_SPEECH,
    ]
    final = next(e.text for e in events if e.kind is SpeechEventKind.FINAL)
    assert overlap(ORDER, final) >= 0.8, final


async def test_clicks_shorter_than_min_speech_are_ignored(stt: LocalStt) -> None:
    audio = silence(0.3) + tone(0.06) + silence(0.8) + tone(0.04) + silence(0.8)
    assert await recognise(stt, audio) == []


async def test_silence_gives_no_events(stt: LocalStt) -> None:
    assert await recognise(stt, silence(2.0)) == []


async def test_only_english_is_understood(stt: LocalStt) -> None:
    with pytest.raises(ProviderError, match="English") as caught:
        async with stt.stream(language="fr-FR"):
            pass
    assert not caught.value.retryable


async def test_send_after_end_input_is_a_misuse(stt: LocalStt) -> None:
    async with stt.stream() as stream:
        await stream.end_input()
        with pytest.raises(RuntimeError, match="end_input"):
            await stream.send(silence(0.02))


async def test_leaving_mid_turn_releases_the_decoder(stt: LocalStt) -> None:
    async with stt.stream() as stream:
        await stream.send(speech(ORDER)[: 16_000 * 2])  # one second, still talking
        events = stream.events()
        first = await anext(events)
        assert first.kind is SpeechEventKind.START_OF_SPEECH
    # The pool has one decoder: a new turn can only be decoded if it was given back.
    events2 = await recognise(stt, speech(ORDER) + silence(0.8))
    assert SpeechEventKind.FINAL in kinds(events2)


PIZZA = ("i would like to order a pizza with", "mushrooms and extra cheese")


def finals(events: list[SpeechEvent]) -> list[SpeechEvent]:
    return [e for e in events if e.kind is SpeechEventKind.FINAL]


async def test_a_thinking_pause_after_an_unfinished_phrase_is_one_turn(stt: LocalStt) -> None:
    first, second = PIZZA
    audio = silence(0.3) + speech(first) + silence(0.7) + speech(second) + silence(2.5)
    got = finals(await recognise(stt, audio))
    assert len(got) == 1, [e.text for e in got]
    assert overlap(f"{first} {second}", got[0].text) >= 0.8, got[0].text


async def test_a_fixed_silence_cuts_the_same_turn_in_two() -> None:
    fixed = LocalStt(turn_detection="silence", endpointing_ms=500, decoders=1)
    first, second = PIZZA
    audio = silence(0.3) + speech(first) + silence(0.7) + speech(second) + silence(1.0)
    got = finals(await recognise(fixed, audio))
    assert len(got) == 2, [e.text for e in got]


async def test_a_complete_turn_ends_after_the_short_silence(stt: LocalStt) -> None:
    # 400 ms between two complete sentences: past min_endpointing_ms (200), so two turns.
    audio = silence(0.3) + speech(QUESTION) + silence(0.4) + speech(ORDER) + silence(0.5)
    got = finals(await recognise(stt, audio))
    assert len(got) == 2, [e.text for e in got]
    assert overlap(QUESTION, got[0].text) >= 0.8, got[0].text
    for event in got:
        assert event.end_of_turn_ms is not None and event.end_of_turn_ms >= 0
        assert event.stt_final_ms is not None and event.stt_final_ms >= 0


async def test_webrtcvad_is_kept_as_a_fallback() -> None:
    fallback = LocalStt(vad="webrtc", decoders=1)
    got = finals(await recognise(fallback, silence(0.5) + speech(ORDER) + silence(1.0)))
    assert len(got) == 1 and overlap(ORDER, got[0].text) >= 0.8, got


async def test_a_noise_burst_starts_no_turn(stt: LocalStt) -> None:
    assert await recognise(stt, silence(0.5) + noise_burst() + silence(1.0)) == []


async def test_a_complete_pause_announces_the_likely_final_before_the_final(stt: LocalStt) -> None:
    events = await recognise(stt, silence(0.3) + speech(QUESTION) + silence(0.8))
    preflight = [i for i, e in enumerate(events) if e.kind is SpeechEventKind.PREFLIGHT]
    final = [i for i, e in enumerate(events) if e.kind is SpeechEventKind.FINAL]
    assert len(preflight) == 1 and len(final) == 1 and preflight[0] < final[0]
    assert events[preflight[0]].text == events[final[0]].text


TAXI = ("i need a taxi", "to the airport at six")


def taxi_twice(gap_s: float) -> bytes:
    """The caller pauses after a complete-sounding phrase, twice, ``gap_s`` apart: ~0.8 s of
    silence, hibari's own ~0.7 s around its phrases included."""
    first, second = TAXI
    said = speech(first) + silence(0.1) + speech(second)
    return silence(0.3) + said + silence(gap_s) + said + silence(2.5)


async def test_a_speaker_cut_off_once_is_given_the_pause_next_time(stt: LocalStt) -> None:
    # The words cannot tell that "i need a taxi" goes on; the speaker can: the first time the
    # turn ends after the short silence, and the speaker goes on after 0.8 s; the next time
    # the same pause is waited for.
    got = [e.text for e in finals(await recognise(stt, taxi_twice(2.0)))]
    assert len(got) == 3, got
    assert overlap(" ".join(TAXI), got[2]) >= 0.8, got


async def test_without_learn_pauses_every_such_pause_ends_the_turn() -> None:
    fixed = LocalStt(learn_pauses=False, decoders=1)
    got = [e.text for e in finals(await recognise(fixed, taxi_twice(2.0)))]
    assert len(got) == 4, got


async def test_a_backchannel_after_a_turn_is_not_learnt_as_a_pause(stt: LocalStt) -> None:
    # "okay" just after a turn is a listening noise, not the rest of a sentence: the next
    # pause after "i need a taxi" still ends the turn.
    first, second = TAXI
    audio = silence(0.3) + speech(first) + silence(0.1) + speech("okay") + silence(2.0)
    audio += speech(first) + silence(0.1) + speech(second) + silence(2.5)
    got = [e.text for e in finals(await recognise(stt, audio))]
    assert len(got) == 4 and got[1] in ("okay", "ok"), got
