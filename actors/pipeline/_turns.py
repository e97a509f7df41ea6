"""Is the speaker done? A rule on the words so far, and what a backchannel is.

End of turn: a recogniser that pauses after a short silence asks ``likely_complete`` about the
transcript so far. A turn that ends on a word English does not end a sentence with (a
conjunction, a preposition, an article, an auxiliary, a filler: "I'd like a pizza with …",
"my flight was cancelled and …") is taken as unfinished, and the recogniser waits longer for
more words; anything else ends after the short silence. The rule errs towards "complete":
a wrong "incomplete" costs a slower answer, a wrong "complete" cuts the speaker off, and the
words that mark an unfinished sentence are the ones people pause after to think.

Tried and measured on the benchmark's speech (bench/voice.py), and left out:

- smart-turn v3.2 (``smart-turn-v3.2-cpu.onnx``, 8.7 MB, inside the ``pipecat-ai`` 1.14 wheel,
  BSD-2; usable without the framework: the file read from the wheel, Whisper log-mel features in
  numpy) called the unfinished halves complete too (p = 0.86–0.99 for "… a pizza with", "… get
  to the", "… send the report to"; only "… cancelled and" got 0.02): it hears the falling pitch
  of speech synthesised phrase by phrase, so it would cut off more turns than this rule, for
  ~48 ms of CPU per decision.
- the recogniser's runners-up (its n-best list): in the room, "please send the report to" is
  heard as "… report ten" with no runner-up ending on "to", while complete turns get junk
  runners-up ("… before noon" → "… before in in") that would make them wait 2 s.

What the words cannot tell ("I need a taxi … to the airport", a misheard "to"), the speaker
can: ``PauseHabit`` gives a speaker who went on talking after a turn we had ended (we cut them
off) that pause plus a margin before their next complete-sounding turn ends, relaxing back a
little with each turn that stays ended. A person who pauses to think is cut off once, not
every time; one who never does keeps the short wait.

Backchannel: "uh-huh", "mm-hm", "yeah", "okay" said while the agent talks are listening noises,
not a request to stop or a turn to answer.
"""

from __future__ import annotations

import re

__all__ = ("PauseHabit", "is_backchannel", "likely_complete", "meaningful_words")

_WORD = re.compile(r"[a-z']+")

# Words after which an English sentence is very rarely over.
_UNFINISHED = frozenset(
    # coordinating and subordinating conjunctions, relative pronouns
    "and but or nor so because if when while although though unless until since than "
    "that which who whom whose where whether "
    # prepositions
    "to of in on at for with from by about into onto over under between through after "
    "before like as around near without towards toward across against during per via "
    # articles, determiners, possessives
    "the a an this these those my your his her its our their some any every each "
    # auxiliaries and modals
    "is are was were am be been being do does did have has had can could will would "
    "shall should may might must "
    # subject pronouns and contractions that need a verb or an object
    "i we they he she i'm we're they're it's there's what's let's i'd i'll "
    # fillers
    "um umm uh uhh ah eh er erm uhm hm hmm mm".split()
)

_BACKCHANNEL = frozenset(
    "uh huh uh-huh mm hmm mhm mm-hm mm-hmm hm yeah yes yep yup ok okay right sure oh ah "
    "i see got it cool nice great alright wow".split()
)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def likely_complete(text: str) -> bool:
    """Whether ``text``, the transcript so far, reads like a finished turn.

    Nothing heard counts as complete: there is nothing to wait for.
    """
    words = _words(text)
    return not words or words[-1] not in _UNFINISHED


def is_backchannel(text: str) -> bool:
    """Whether ``text`` is only listening noises ("uh-huh", "yeah okay"), or nothing."""
    return all(word in _BACKCHANNEL for word in _words(text))


def meaningful_words(text: str) -> int:
    """How many words of ``text`` are not backchannel noises."""
    return sum(word not in _BACKCHANNEL for word in _words(text))


_HABIT_MARGIN_S = 0.25  # beyond the longest pause the speaker went on after
_HABIT_RELAX_S = 0.05  # given back per turn that stays ended: a habit lasts most of a call
_RESUMED_WITHIN_S = 1.2  # speech later than this after a turn ended is a new turn, not more


class PauseHabit:
    """How long one speaker's complete-sounding turns wait before they end.

    ``wait_s`` starts at ``min_s``. Call ``spoke_again(gap_s)`` when the speaker has said more
    than a backchannel, starting ``gap_s`` after a turn that was ended as complete (recognisers
    call it at that turn's final, when its words are known). Up to ``_RESUMED_WITHIN_S`` that
    was a thinking pause we cut short: the wait becomes the gap plus a margin (at most ``max_s``).
    Later, it was a new turn and the cut was right: the wait relaxes towards ``min_s``.
    """

    def __init__(self, min_s: float, max_s: float) -> None:
        self._min_s = min_s
        self._max_s = max(min_s, max_s)
        self.wait_s = min_s

    def spoke_again(self, gap_s: float) -> None:
        if gap_s <= _RESUMED_WITHIN_S:
            self.wait_s = min(self._max_s, max(self.wait_s, gap_s + _HABIT_MARGIN_S))
        else:
            self.wait_s = max(self._min_s, self.wait_s - _HABIT_RELAX_S)
