"""Preemptive generation: the LLM starts on the recogniser's likely-final transcript.

A recogniser that has judged a pause to end a complete turn knows the words before its final
transcript is out (pocketsphinx still has ``end_utt()`` to run; a vendor its own finalisation).
On that PREFLIGHT the pipeline starts the reply's LLM call at once and buffers its deltas; when
the FINAL comes with the same words, the reply takes the buffered stream and speaks, so the
LLM's time to first token overlaps the recogniser's. If the FINAL differs (or the speaker goes
on), the generation is cancelled and thrown away, and the reply starts on the FINAL as usual.
With tools, the model is offered them here too; a tool call it asks for is only buffered, and
runs only if the reply adopts the generation (nothing is done for words that were not said).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, Sequence

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from actors._exceptions import ProviderError
from actors._metrics import PREEMPTIVE_GENERATIONS
from actors.providers import ChatMessage, LlmItem, LlmProvider, ToolCallingLlm, ToolDefinition
from actors.room._settings import CLOSE_BOUND_S

__all__ = ("PendingPreemption", "Preemption", "same_words")

logger = logging.getLogger(__name__)

_BUFFER = 4096  # deltas held before the reply takes them (the producer waits beyond it)
_WORD = re.compile(r"[a-z0-9']+")


def same_words(a: str, b: str) -> bool:
    """Whether two transcripts say the same words (case and punctuation aside)."""
    return _WORD.findall(a.lower()) == _WORD.findall(b.lower())


class Preemption:
    """One speculative LLM call for ``speaker``'s likely turn ``text``.

    Args:
        speaker: who is speaking.
        text: the likely-final transcript.
    """

    def __init__(self, speaker: str, text: str) -> None:
        self.speaker = speaker
        self.text = text
        self._scope = anyio.CancelScope()
        self._send: MemoryObjectSendStream[LlmItem]
        self._receive: MemoryObjectReceiveStream[LlmItem]
        self._send, self._receive = anyio.create_memory_object_stream[LlmItem](_BUFFER)
        self.failed = False

    def start(
        self,
        tg: TaskGroup,
        llm: LlmProvider,
        messages: Sequence[ChatMessage],
        instructions: str | None,
        tools: Sequence[ToolDefinition] = (),
    ) -> None:
        """Start generating in ``tg`` (with ``text`` as the last user message), offering
        ``tools`` to a model that can call them."""
        turn = [*messages, ChatMessage("user", self.text, self.speaker)]
        tg.start_soon(self._generate, llm, turn, instructions, tools, name="llm:preemptive")

    def matches(self, speaker: str, final: str) -> bool:
        return speaker == self.speaker and same_words(self.text, final) and not self.failed

    async def deltas(self) -> AsyncGenerator[LlmItem]:
        """The generated deltas, buffered ones first (for the reply that adopts this)."""
        async with self._receive:
            async for delta in self._receive:
                yield delta
        if self.failed:
            raise ProviderError(
                "preemptive generation failed", vendor="preemptive", retryable=False
            )

    def cancel(self) -> None:
        """Throw the generation away (the final differed, or the reply is over)."""
        self._scope.cancel("preemptive generation discarded")
        self._receive.close()

    async def _generate(
        self,
        llm: LlmProvider,
        messages: list[ChatMessage],
        instructions: str | None,
        tools: Sequence[ToolDefinition],
    ) -> None:
        with self._scope:
            async with self._send:
                deltas: AsyncGenerator[LlmItem] = (
                    llm.complete_with_tools(messages, instructions=instructions, tools=tools)
                    if tools and isinstance(llm, ToolCallingLlm)
                    else llm.complete(messages, instructions=instructions)
                )
                try:
                    async for delta in deltas:
                        await self._send.send(delta)
                except ProviderError as exc:
                    # The reply that adopts this apologises like any other failed reply.
                    self.failed = True
                    logger.warning(
                        "preemptive generation failed",
                        extra={"vendor": exc.vendor, "error": type(exc).__name__},
                    )
                except anyio.BrokenResourceError:
                    pass  # discarded while generating
                finally:
                    with anyio.move_on_after(CLOSE_BOUND_S, shield=True):
                        await deltas.aclose()


class PendingPreemption:
    """At most one preemptive generation in flight; each one's outcome counted once."""

    def __init__(self) -> None:
        self._current: Preemption | None = None

    def begin(self, preempt: Preemption) -> None:
        self.discard()
        self._current = preempt

    def take(self, speaker: str, final: str) -> Preemption | None:
        """The generation if it was for these very words; else it is thrown away."""
        preempt, self._current = self._current, None
        if preempt is None:
            return None
        if preempt.matches(speaker, final):
            PREEMPTIVE_GENERATIONS.labels(outcome="used").inc()
            return preempt
        preempt.cancel()
        PREEMPTIVE_GENERATIONS.labels(outcome="discarded").inc()
        return None

    def discard(self) -> None:
        preempt, self._current = self._current, None
        if preempt is not None:
            preempt.cancel()
            PREEMPTIVE_GENERATIONS.labels(outcome="discarded").inc()
