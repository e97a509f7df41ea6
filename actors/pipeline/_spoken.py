"""What the agent actually said: maps audio played out back to the text it carried.

Each sentence's audio occupies a span of the reply's audio timeline. When a reply is cut
(barge-in), the text recorded is every sentence fully played plus the words of the current
sentence in proportion to how much of its audio was played.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ("SpokenText",)


@dataclass(slots=True)
class _Span:
    text: str
    start_s: float
    end_s: float


@dataclass(slots=True)
class SpokenText:
    """The timeline of one reply's audio."""

    _spans: list[_Span] = field(default_factory=list)
    queued_s: float = 0.0

    def add_audio(self, text: str, seconds: float) -> None:
        """Record ``seconds`` more audio carrying (part of) ``text``'s sentence."""
        if self._spans and self._spans[-1].text is text:
            self._spans[-1].end_s += seconds
        else:
            self._spans.append(_Span(text, self.queued_s, self.queued_s + seconds))
        self.queued_s += seconds

    @property
    def full_text(self) -> str:
        return " ".join(span.text for span in self._spans)

    def spoken(self, played_s: float) -> str:
        """The text heard when ``played_s`` seconds of the reply's audio have played."""
        words: list[str] = []
        for span in self._spans:
            if played_s >= span.end_s:
                words.append(span.text)
                continue
            if played_s > span.start_s and span.end_s > span.start_s:
                share = (played_s - span.start_s) / (span.end_s - span.start_s)
                parts = span.text.split()
                count = int(len(parts) * share)
                if count:
                    words.append(" ".join(parts[:count]))
            break
        return " ".join(words)
