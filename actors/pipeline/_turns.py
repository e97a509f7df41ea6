"""Is the speaker done? A rule on the words so far, and what a backchannel is.

End of turn: a recogniser that pauses after a short silence asks ``likely_complete`` about the
transcript so far. A turn that ends on a word English does not end a sentence with (a
conjunction, a preposition, an article, an auxiliary, a filler: "I'd like a pizza with …",
"my flight was cancelled and …") is taken as unfinished, and the recogniser waits longer for
more words; anything else ends after the short silence. The rule errs towards "complete":
a wrong "incomplete" costs a slower answer, a wrong "complete" cuts the speaker off, and the
words that mark an unfinished sentence are the ones people pause after to think.

The recogniser's best guess often drops or mishears exactly those short unstressed words ("send
the report to" heard as "send the report ten"), so ``likely_complete`` also reads its runners-up
(the n-best list): if one of them ends on such a word, the turn may be unfinished and waits.
Only for turns of three words or more: a one- or two-word turn ("yeah", "no thanks") is an
answer, and its runners-up ("yeah and", "yeah i") are noise, not a sign of a pause.

No turn-completion model is used. smart-turn v3.2 (``smart-turn-v3.2-cpu.onnx``, 8.7 MB, inside
the ``pipecat-ai`` wheel, BSD-2) was measured on the benchmark's speech: it called all but one
of the unfinished halves complete (p > 0.86 for "… a pizza with", "… get to the"), so it would
cut off more turns than this rule, for ~48 ms of CPU per decision; and the wheel pins
``soxr~=1.0`` and pulls numba and a dozen packages a daemon does not need.

Backchannel: "uh-huh", "mm-hm", "yeah", "okay" said while the agent talks are listening noises,
not a request to stop or a turn to answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ("is_backchannel", "likely_complete", "meaningful_words")

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


_MIN_WORDS_FOR_ALTERNATIVES = 3


def likely_complete(text: str, alternatives: Iterable[str] = ()) -> bool:
    """Whether ``text``, the transcript so far, reads like a finished turn.

    ``alternatives`` are the recogniser's runners-up for the same audio; when ``text`` has three
    words or more, one of them ending on a word a sentence does not end with makes the turn
    unfinished too. Nothing heard counts as complete: there is nothing to wait for.
    """
    words = _words(text)
    if words and words[-1] in _UNFINISHED:
        return False
    if len(words) < _MIN_WORDS_FOR_ALTERNATIVES:
        return True
    return not any((alt := _words(other)) and alt[-1] in _UNFINISHED for other in alternatives)


def is_backchannel(text: str) -> bool:
    """Whether ``text`` is only listening noises ("uh-huh", "yeah okay"), or nothing."""
    return all(word in _BACKCHANNEL for word in _words(text))


def meaningful_words(text: str) -> int:
    """How many words of ``text`` are not backchannel noises."""
    return sum(word not in _BACKCHANNEL for word in _words(text))
