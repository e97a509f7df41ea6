"""Deepgram's endpointing and UtteranceEnd under the text end-of-turn rule, through deepgram-sdk
against the wire fake: a pause after an unfinished phrase waits for the rest of the sentence."""

from __future__ import annotations

import anyio

from actors.providers import SpeechEvent, SpeechEventKind
from actors.providers.deepgram import DeepgramStt
from tests.actors.providers.audio import silence, tone
from tests.actors.providers.test_deepgram import CHUNK, converse, finals
from tests.fakes.deepgram_fake import DeepgramFake


def provider(fake: DeepgramFake, *, max_endpointing_ms: int = 2000) -> DeepgramStt:
    return DeepgramStt(
        api_key=fake.api_key,
        base_url=fake.url,
        turn_detection="text",
        min_endpointing_ms=200,
        max_endpointing_ms=max_endpointing_ms,
    )


def kinds(events: list[SpeechEvent]) -> list[SpeechEventKind]:
    return [e.kind for e in events if e.kind is not SpeechEventKind.INTERIM]


async def test_deepgram_is_asked_for_the_short_pause_and_the_long_word_gap(
    deepgram_fake: DeepgramFake,
) -> None:
    await converse(provider(deepgram_fake), silence(0.1))
    assert deepgram_fake.queries[0]["endpointing"] == "200"
    assert deepgram_fake.queries[0]["utterance_end_ms"] == "2000"
    await converse(provider(deepgram_fake, max_endpointing_ms=600), silence(0.1))
    assert deepgram_fake.queries[1]["utterance_end_ms"] == "1000"  # Deepgram's least


async def test_a_complete_phrase_ends_the_turn_at_the_short_pause(
    deepgram_fake: DeepgramFake,
) -> None:
    deepgram_fake.transcripts = ["what time is it", "thanks"]
    audio = tone(0.8) + silence(0.7) + tone(0.4) + silence(0.5)
    events = await converse(provider(deepgram_fake), audio)
    assert finals(events) == ["what time is it", "thanks"]
    first = next(e for e in events if e.kind is SpeechEventKind.FINAL)
    assert first.end_of_turn_ms == 200.0  # Deepgram's endpointing, nothing held


async def test_a_pause_after_an_unfinished_phrase_waits_for_the_rest(
    deepgram_fake: DeepgramFake,
) -> None:
    deepgram_fake.transcripts = ["please send the report to", "my manager before noon"]
    audio = tone(1.0) + silence(0.7) + tone(0.8) + silence(0.5)
    events = await converse(provider(deepgram_fake), audio)
    speech_finals = [m for m in deepgram_fake.sent if m.get("speech_final")]
    assert len(speech_finals) == 2  # Deepgram ended an utterance at the pause ...
    # ... and the turn is the whole sentence, one FINAL.
    assert finals(events) == ["please send the report to my manager before noon"]


async def test_a_held_turn_ends_at_the_utterance_end(deepgram_fake: DeepgramFake) -> None:
    deepgram_fake.transcripts = ["please send the report to"]
    events = await converse(provider(deepgram_fake), tone(1.0) + silence(2.5))
    assert any(m["type"] == "UtteranceEnd" for m in deepgram_fake.sent)
    # Ended by the UtteranceEnd, before the input ended (a Finalize flush has no END_OF_SPEECH).
    assert kinds(events)[-2:] == [SpeechEventKind.FINAL, SpeechEventKind.END_OF_SPEECH]
    assert finals(events) == ["please send the report to"]


async def test_without_an_utterance_end_our_clock_ends_a_held_turn(
    deepgram_fake: DeepgramFake,
) -> None:
    deepgram_fake.utterance_end = False  # the docs allow it never to come
    deepgram_fake.transcripts = ["i would like a pizza with"]
    audio = tone(0.8) + silence(0.4)
    stt = provider(deepgram_fake, max_endpointing_ms=400)
    with anyio.fail_after(10):
        async with stt.stream() as stream:
            for offset in range(0, len(audio), CHUNK):
                await stream.send(audio[offset : offset + CHUNK])
            # No more audio, no Finalize: only the hold's own deadline can end the turn.
            final = None
            async for event in stream.events():
                if event.kind is SpeechEventKind.FINAL:
                    final = event
                    break
            assert deepgram_fake.finalizes == 0
            await stream.end_input()
    assert final is not None and final.text == "i would like a pizza with"
    assert final.end_of_turn_ms is not None  # endpointing and the hold


async def test_a_turn_that_ends_at_a_pause_says_the_speaker_stopped_at_once(
    deepgram_fake: DeepgramFake,
) -> None:
    # "Uh-huh" over the agent: END_OF_SPEECH with its FINAL (the agent resumes), not 2 s later
    # at the UtteranceEnd, which then adds no second one.
    deepgram_fake.transcripts = ["uh-huh"]
    seen: list[SpeechEventKind] = []
    with anyio.fail_after(10):
        async with provider(deepgram_fake).stream() as stream:
            events = stream.events()

            async def until(kind: SpeechEventKind) -> None:
                async for event in events:
                    if event.kind is not SpeechEventKind.INTERIM:
                        seen.append(event.kind)
                    if event.kind is kind:
                        return

            for audio in (tone(0.4), silence(0.4)):
                for offset in range(0, len(audio), CHUNK):
                    await stream.send(audio[offset : offset + CHUNK])
            await until(SpeechEventKind.END_OF_SPEECH)
            assert not any(m["type"] == "UtteranceEnd" for m in deepgram_fake.sent)
            quiet = silence(2.5)
            for offset in range(0, len(quiet), CHUNK):
                await stream.send(quiet[offset : offset + CHUNK])
            await stream.end_input()
            await until(SpeechEventKind.FINAL)  # none comes: to the end of the stream
    assert any(m["type"] == "UtteranceEnd" for m in deepgram_fake.sent)
    assert seen == [
        SpeechEventKind.START_OF_SPEECH,
        SpeechEventKind.FINAL,
        SpeechEventKind.END_OF_SPEECH,
    ]


async def said_in_order(
    fake: DeepgramFake, transcripts: list[str], utterances: list[bytes]
) -> list[str]:
    """Each of ``utterances`` sent after the FINAL of the one before: the FINALs' texts."""
    fake.transcripts = transcripts
    got: list[str] = []
    with anyio.fail_after(10):
        async with provider(fake).stream() as stream:
            events = stream.events()
            for audio in utterances:
                for offset in range(0, len(audio), CHUNK):
                    await stream.send(audio[offset : offset + CHUNK])
                async for event in events:
                    if event.kind is SpeechEventKind.FINAL:
                        got.append(event.text)
                        break
            await stream.end_input()
    return got


TAXI, AIRPORT = "i need a taxi", "to the airport at six"


async def test_a_speaker_who_went_on_after_a_complete_phrase_is_given_the_pause_next_time(
    deepgram_fake: DeepgramFake,
) -> None:
    # "i need a taxi" reads complete and ends at Deepgram's 200 ms; the speaker goes on 0.6 s
    # later (learnt at that turn's FINAL). Next time the same phrase is held that long, and
    # the rest, sent at once, joins it.
    phrase = tone(0.8) + silence(0.6)
    got = await said_in_order(
        deepgram_fake,
        [TAXI, AIRPORT, TAXI, AIRPORT],
        [phrase, tone(0.8) + silence(0.4), phrase + tone(0.8) + silence(0.4)],
    )
    assert got == [TAXI, AIRPORT, f"{TAXI} {AIRPORT}"]


async def test_a_backchannel_after_a_turn_is_not_learnt_as_a_pause(
    deepgram_fake: DeepgramFake,
) -> None:
    # "okay" 0.6 s after a turn is a listening noise, not the rest of the sentence: the next
    # "i need a taxi" still ends at the short pause.
    phrase = tone(0.8) + silence(0.6)
    got = await said_in_order(
        deepgram_fake,
        [TAXI, "okay", TAXI, AIRPORT],
        [phrase, tone(0.3) + silence(0.4), phrase + tone(0.8) + silence(0.4), b""],
    )
    assert got == [TAXI, "okay", TAXI, AIRPORT]
