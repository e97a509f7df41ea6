"""Fakes for several agents in one room: every agent hears every utterance, and an LLM that
hands a question over to a named colleague.

With one ``InstantStt`` shared by the agents of a process, each agent's stream would take the
next scripted text, so two agents would "hear" different words; with ``TeamStt`` every stream
hears the line appended last (append one before each utterance).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager

from actors.providers import ChatMessage, SttStream
from tests.fakes.instant import EchoLlm, InstantStt, _InstantStream


class _Reading:
    """What every stream hears: the line said last (a stream may be opened again between two
    turns, so a reading position of its own would miss a line)."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def __len__(self) -> int:
        return 1 if self._lines else 0

    def __bool__(self) -> bool:
        return bool(self._lines)

    def __getitem__(self, index: int, /) -> str:
        return self._lines[-1]

    def popleft(self) -> str:
        return self._lines[-1]


class TeamStt(InstantStt):
    """``InstantStt`` whose every stream hears the last line of ``lines`` (append to say one)."""

    def __init__(self, *, silence_ms: int = 240) -> None:
        super().__init__(silence_ms=silence_ms)
        self.lines: list[str] = []

    @asynccontextmanager
    async def stream(self, *, language: str | None = None) -> AsyncIterator[SttStream]:
        async with super().stream(language=language) as stream:
            assert isinstance(stream, _InstantStream)
            stream.script = _Reading(self.lines)
            yield stream


class HandOverLlm(EchoLlm):
    """Echoes, except that a user turn with one of ``topics`` in it is handed over to the
    agent named there: "That is one for Sam. Over to you, Sam." """

    def __init__(self, topics: dict[str, str]) -> None:
        super().__init__()
        self.topics = topics

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        last = messages[-1] if messages else None
        topic = next(
            (
                t
                for t in self.topics
                if last is not None and last.role == "user" and t in last.content
            ),
            None,
        )
        if topic is None:
            async for delta in super().complete(messages, instructions=instructions):
                yield delta
            return
        self.calls.append(list(messages))
        name = self.topics[topic]
        for i, word in enumerate(f"That is one for {name}. Over to you, {name}.".split(" ")):
            yield word if i == 0 else " " + word
