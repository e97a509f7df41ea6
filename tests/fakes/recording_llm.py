"""A tool-calling model made of one function per round, which records what each round saw.

Tests of tool calls (unit and e2e) share it: ``rounds`` gives a round's items (text deltas and
``ToolCall``s) from what the model is shown; ``seen`` keeps each round's messages, and
``crash_next`` makes the next round raise a bug (not a provider error: the room actor crashes
and is restarted).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence

from actors.providers import ChatMessage, LlmItem, ScriptedLlm, ToolDefinition

__all__ = ("RecordingLlm", "Round")

Round = Callable[
    [Sequence[ChatMessage], str | None, Sequence[ToolDefinition]], AsyncIterator[LlmItem]
]
"""One round: (messages, instructions, tools offered) to its items."""


class RecordingLlm:
    name = "recording"

    def __init__(self, rounds: Round) -> None:
        self._rounds = rounds
        self.seen: list[list[ChatMessage]] = []
        self.crash_next = False

    @classmethod
    def scripted(cls, llm: ScriptedLlm) -> RecordingLlm:
        """The scripted LLM's rounds (its rules, their tool calls), recorded."""
        return cls(lambda m, i, t: llm.complete_with_tools(m, instructions=i, tools=t))

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        async for item in self.complete_with_tools(messages, instructions=instructions):
            if isinstance(item, str):
                yield item

    async def complete_with_tools(
        self,
        messages: Sequence[ChatMessage],
        *,
        instructions: str | None = None,
        tools: Sequence[ToolDefinition] = (),
    ) -> AsyncGenerator[LlmItem]:
        self.seen.append(list(messages))
        if self.crash_next:
            self.crash_next = False
            raise RuntimeError("a bug in the middle of an answer")
        async for item in self._rounds(messages, instructions, tools):
            yield item

    async def aclose(self) -> None:
        pass
