"""Turns a stream of LLM text deltas into speakable sentences.

TTS sounds right and starts fast when it gets whole sentences: the first one as soon as it is
complete, then each next one. Very long sentences are cut at a clause boundary so the first
audio never waits for a paragraph.
"""

from __future__ import annotations

import re

__all__ = ("SentenceChunker",)

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)")
_CLAUSE_END = re.compile(r"[,;:—]\s")


class SentenceChunker:
    """Accumulates deltas; ``push`` returns the sentences completed by a delta.

    Args:
        min_chars: a sentence shorter than this waits for the next one ("Hi." + "I'm here.").
        max_chars: past this, the text is cut at the last clause boundary (or a space).
    """

    def __init__(self, *, min_chars: int = 8, max_chars: int = 200) -> None:
        self._min = min_chars
        self._max = max_chars
        self._buffer = ""

    def push(self, delta: str) -> list[str]:
        self._buffer += delta
        out: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                return out
            sentence, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:].lstrip()
            if sentence:
                out.append(sentence)

    def flush(self) -> list[str]:
        """The rest of the text, at the end of the reply."""
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _next_cut(self) -> int | None:
        for match in _SENTENCE_END.finditer(self._buffer):
            if match.end() >= self._min:
                return match.end()
        if len(self._buffer) <= self._max:
            return None
        head = self._buffer[: self._max]
        clauses = list(_CLAUSE_END.finditer(head))
        if clauses:
            return clauses[-1].end()
        space = head.rfind(" ")
        return space if space > 0 else self._max
