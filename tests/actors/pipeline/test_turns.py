from __future__ import annotations

import pytest

from actors.pipeline import PauseHabit, is_backchannel, likely_complete, meaningful_words


@pytest.mark.parametrize(
    "text",
    [
        "i would like to order a pizza with",
        "my flight was cancelled and",
        "can you tell me how to get to the",
        "i am looking for a restaurant that",
        "what is the best way to",
        "so um",
        "what is the best way to ah",  # a recogniser's filler at the pause
        "I'm",
    ],
)
def test_a_turn_ending_on_a_word_sentences_do_not_end_with_is_unfinished(text: str) -> None:
    assert not likely_complete(text)


@pytest.mark.parametrize(
    "text",
    [
        "what time does the last train leave the station",
        "turn on the lights",
        "yes",
        "thank you",
        "Could you tell me what time the pharmacy opens tomorrow?",
        "",  # nothing heard: nothing to wait for
    ],
)
def test_anything_else_reads_complete(text: str) -> None:
    assert likely_complete(text)


def test_backchannels_are_listening_noises() -> None:
    assert is_backchannel("uh-huh") and is_backchannel("Mm-hmm.") and is_backchannel("yeah okay")
    assert is_backchannel("")
    assert not is_backchannel("stop")
    assert not is_backchannel("yeah but wait")


def test_meaningful_words_leave_backchannels_out() -> None:
    assert meaningful_words("yeah okay") == 0
    assert meaningful_words("okay wait a second") == 3


def test_a_pause_the_speaker_went_on_after_is_waited_for_next_time() -> None:
    habit = PauseHabit(0.2, 2.0)
    assert habit.wait_s == 0.2
    habit.spoke_again(0.7)  # cut off: the speaker went on 0.7 s after the turn ended
    assert 0.7 < habit.wait_s < 1.2
    habit.spoke_again(0.3)  # a shorter pause does not shorten the wait
    assert 0.7 < habit.wait_s < 1.2


def test_turns_that_stay_ended_give_the_wait_back_step_by_step() -> None:
    habit = PauseHabit(0.2, 2.0)
    habit.spoke_again(0.7)
    learned = habit.wait_s
    habit.spoke_again(5.0)  # a new turn, well after the last one: that cut was right
    assert 0.2 < habit.wait_s < learned
    for _ in range(20):
        habit.spoke_again(5.0)
    assert habit.wait_s == 0.2


def test_the_wait_never_passes_max_endpointing() -> None:
    habit = PauseHabit(0.2, 0.5)
    habit.spoke_again(1.0)
    assert habit.wait_s == 0.5
