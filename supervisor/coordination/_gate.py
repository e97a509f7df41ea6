"""The per-user limits' hook into a room's voice pipeline: an ``LlmProvider`` decorator.

Before each answer the gate asks ``UserLimits.check_turn``; when a limit is reached, the
answer is the limit's short message instead of the model's, so the room's pipeline speaks and
captions it like any answer (and records it in the conversation). Greetings and ``say``
commands do not go through the model and are never limited. The wrapped model is shared by
the process's rooms, so closing the gate never closes it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence

from actors.providers import ChatMessage, LlmItem, LlmProvider, ToolCallingLlm, ToolDefinition
from supervisor.coordination._limits import UserLimits

__all__ = ("GatedLlm",)


class GatedLlm:
    """``llm`` for one room, behind the per-user limits; implements ``LlmProvider``.

    Args:
        llm: the process's model.
        limits: the per-user limits.
        room: the room this gate serves.
        user_of: returns the room's current ``user_id`` (from its metadata), or None.
    """

    def __init__(
        self,
        llm: LlmProvider,
        limits: UserLimits,
        room: str,
        user_of: Callable[[], str | None],
    ) -> None:
        self._llm = llm
        self._limits = limits
        self._room = room
        self._user_of = user_of
        self.name = llm.name

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        refusal = await self._limits.check_turn(self._room, self._user_of())
        if refusal is not None:
            yield refusal
            return
        deltas = self._llm.complete(messages, instructions=instructions)
        try:
            async for delta in deltas:
                yield delta
        finally:
            await deltas.aclose()

    async def complete_with_tools(
        self,
        messages: Sequence[ChatMessage],
        *,
        instructions: str | None = None,
        tools: Sequence[ToolDefinition] = (),
    ) -> AsyncGenerator[LlmItem]:
        # The round after a tool's result continues the same answer: it is not a new turn.
        if not messages or messages[-1].role != "tool":
            refusal = await self._limits.check_turn(self._room, self._user_of())
            if refusal is not None:
                yield refusal
                return
        llm = self._llm
        items: AsyncGenerator[LlmItem] = (
            llm.complete_with_tools(messages, instructions=instructions, tools=tools)
            if isinstance(llm, ToolCallingLlm)
            else llm.complete(messages, instructions=instructions)
        )
        try:
            async for item in items:
                yield item
        finally:
            await items.aclose()

    async def aclose(self) -> None:
        """Nothing to close: the wrapped model belongs to the process."""
