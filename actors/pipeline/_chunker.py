"""Turns a stream of LLM text deltas into speakable chunks: the first one early, then sentences.

TTS sounds right when it gets whole sentences, but the first audio should not wait for a whole
sentence: the first chunk of a reply ends at its first clause boundary ("Sure, …", "Well, …")
once it has a few words, or after ``first_max_words`` words when the model is slow to reach
one, so synthesis starts while the model is still writing. Every later chunk is a sentence
(synthesised while the previous one plays). Very long sentences are cut at a clause boundary
so no chunk waits for a paragraph. A ``BREAK`` in the stream ends the chunk there at once,
however short (what was said before a tool call, a filler, a built-in's words).
"""

from __future__ import annotations

import re

__all__ = ("BREAK", "SentenceChunker")

BREAK = "\f"
"""A delta (or part of one) that ends the current chunk at once; never spoken."""

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)")
_CLAUSE_END = re.compile(r"[,;:—]\s")
_WORD_END = re.compile(r"\S(?=\s)")


class SentenceChunker:
    """Accumulates deltas; ``push`` returns the chunks completed by a delta.

    Args:
        min_chars: a sentence shorter than this waits for the next one ("Hi." + "I'm here.").
        max_chars: past this, the text is cut at the last clause boundary (or a space).
        first_clause_words: the first chunk ends at the first clause boundary that follows at
            least this many words (0: the first chunk is a sentence like the others).
        first_max_words: the first chunk ends after this many words if no boundary came
            (0: no limit).
    """

    def __init__(
        self,
        *,
        min_chars: int = 8,
        max_chars: int = 200,
        first_clause_words: int = 3,
        first_max_words: int = 12,
    ) -> None:
        self._min = min_chars
        self._max = max_chars
        self._first_clause_words = first_clause_words
        self._first_max_words = first_max_words
        self._first = True
        self._buffer = ""

    def push(self, delta: str) -> list[str]:
        self._buffer += delta
        out: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                return out
            chunk, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:].lstrip()
            if chunk:
                out.append(chunk)
                self._first = False

    def flush(self) -> list[str]:
        """The rest of the text, at the end of the reply."""
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _next_cut(self) -> int | None:
        forced = self._buffer.find(BREAK)
        if forced >= 0:
            return forced + 1
        sentence = next(
            (m.end() for m in _SENTENCE_END.finditer(self._buffer) if m.end() >= self._min), None
        )
        if self._first:
            early = self._first_cut()
            if early is not None and (sentence is None or early < sentence):
                return early
        if sentence is not None:
            return sentence
        if len(self._buffer) <= self._max:
            return None
        head = self._buffer[: self._max]
        clauses = list(_CLAUSE_END.finditer(head))
        if clauses:
            return clauses[-1].end()
        space = head.rfind(" ")
        return space if space > 0 else self._max

    def _first_cut(self) -> int | None:
        """Where the first chunk may end before its sentence does, if anywhere yet."""
        if self._first_clause_words:
            for match in _CLAUSE_END.finditer(self._buffer):
                if len(self._buffer[: match.start() + 1].split()) >= self._first_clause_words:
                    return match.end()
        if self._first_max_words:
            ends = list(_WORD_END.finditer(self._buffer))
            if len(ends) >= self._first_max_words:
                return ends[self._first_max_words - 1].end()
        return None
