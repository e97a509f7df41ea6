from __future__ import annotations

from actors.pipeline import SentenceChunker, SpokenText


def feed(chunker: SentenceChunker, text: str, step: int = 3) -> list[str]:
    out: list[str] = []
    for i in range(0, len(text), step):
        out += chunker.push(text[i : i + step])
    return out + chunker.flush()


def test_sentences_come_out_as_soon_as_they_end() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Hello there. How") == ["Hello there."]
    assert chunker.push(" are you? I am") == ["How are you?"]
    assert chunker.flush() == ["I am"]


def test_token_by_token_gives_the_same_sentences() -> None:
    text = "You said: turn on the lights. Sure! Done, they are on now."
    assert feed(SentenceChunker(), text, step=1) == [
        "You said: turn on the lights.",
        "Sure! Done, they are on now.",
    ]


def test_short_sentences_wait_for_more() -> None:
    assert feed(SentenceChunker(min_chars=8), "Hi. I'm here to help. Ok.") == [
        "Hi. I'm here to help.",
        "Ok.",
    ]


def test_long_text_is_cut_at_a_clause_boundary() -> None:
    text = "word " * 30 + ", and then " + "more " * 40
    parts = feed(SentenceChunker(max_chars=200), text, step=7)
    assert all(len(p) <= 200 for p in parts)
    assert " ".join(parts).split() == text.split()


def test_numbers_and_abbreviations_do_not_end_sentences_mid_token() -> None:
    assert feed(SentenceChunker(), "It costs 3.50 dollars today. Thanks.") == [
        "It costs 3.50 dollars today.",
        "Thanks.",
    ]


def test_spoken_text_counts_only_played_audio() -> None:
    spoken = SpokenText()
    first, second = "One two three four.", "Five six seven eight."
    spoken.add_audio(first, 1.0)
    spoken.add_audio(second, 0.5)
    spoken.add_audio(second, 0.5)
    assert spoken.spoken(0.0) == ""
    assert spoken.spoken(0.5) == "One two"
    assert spoken.spoken(1.0) == first
    assert spoken.spoken(1.5) == first + " Five six"
    assert spoken.spoken(9.0) == spoken.full_text == first + " " + second


def test_the_first_chunk_ends_at_its_first_clause() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Of course you can, I will book that") == ["Of course you can,"]
    # Later chunks are whole sentences again.
    assert chunker.push(" for you, at seven. Anything") == ["I will book that for you, at seven."]


def test_a_clause_of_fewer_words_waits_for_its_sentence() -> None:
    text = "You said: turn on the lights. Okay."
    assert feed(SentenceChunker(first_clause_words=3), text, step=1) == [
        "You said: turn on the lights.",
        "Okay.",
    ]


def test_the_first_chunk_is_cut_after_enough_words_without_a_boundary() -> None:
    chunker = SentenceChunker(first_max_words=4)
    assert chunker.push("one two three fou") == []
    assert chunker.push("r five six") == ["one two three four"]
    assert chunker.flush() == ["five six"]


def test_early_first_chunks_can_be_turned_off() -> None:
    chunker = SentenceChunker(first_clause_words=0, first_max_words=0)
    assert chunker.push("Sure thing, " + "word " * 20) == []


def test_the_padding_before_the_first_word_is_found() -> None:
    import numpy as np

    from actors.pipeline import leading_silence_bytes

    rate = 24_000
    quiet = np.zeros(int(0.3 * rate), dtype=np.int16)
    word = np.full(rate // 10, 5000, dtype=np.int16)
    pcm = np.concatenate([quiet, word]).tobytes()
    assert leading_silence_bytes(pcm, rate) == (len(quiet) - rate // 100) * 2  # 10 ms kept
    assert leading_silence_bytes(quiet.tobytes(), rate) == len(quiet) * 2  # all, so far
    assert leading_silence_bytes(word.tobytes(), rate) == 0
