"""The offline language model: rule replies and echo, streamed word by word.

``ScriptedLlm`` answers the last user message with the first matching rule's reply, else with
``echo_prefix`` followed by the user's words. It never touches the network, so it is the
embedded default and the stand-in for a real model in tests. It never logs what was said
except at DEBUG under ``pii.*`` keys.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

import anyio
from anyio.lowlevel import checkpoint

from actors.providers._base import ChatMessage
from actors.providers._settings import LlmSettings, Rule

__all__ = ("ScriptedLlm",)

logger = logging.getLogger(__name__)

# A token is a word with the whitespace that follows it, so joining the tokens gives the reply.
_TOKEN = re.compile(r"\s*\S+\s*")


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    pattern: re.Pattern[str]
    reply: str


def _compile(rule: Rule) -> _CompiledRule:
    if rule.match is not None:
        return _CompiledRule(re.compile(rule.match, re.IGNORECASE), rule.reply)
    words = "|".join(re.escape(word) for word in rule.keywords)
    return _CompiledRule(re.compile(rf"\b(?:{words})\b", re.IGNORECASE), rule.reply)


class ScriptedLlm:
    """Rules and echo; implements ``LlmProvider``.

    Args:
        rules: tried in order; the first whose pattern is found in the user's words answers.
        echo_prefix: the reply when no rule matches is ``echo_prefix + <user words>``.
        token_delay_s: pause between streamed words (0 = as fast as the consumer reads).
    """

    name = "scripted"

    def __init__(
        self,
        *,
        rules: Sequence[Rule] = (),
        echo_prefix: str = "You said: ",
        token_delay_s: float = 0.0,
    ) -> None:
        self._rules = tuple(_compile(rule) for rule in rules)
        self._echo_prefix = echo_prefix
        self._token_delay_s = token_delay_s

    @classmethod
    def from_settings(cls, settings: LlmSettings) -> ScriptedLlm:
        return cls(
            rules=settings.rules,
            echo_prefix=settings.echo_prefix,
            token_delay_s=settings.token_delay_s,
        )

    def reply_to(self, text: str) -> str:
        """The full reply to ``text`` (what ``complete`` streams)."""
        for rule in self._rules:
            if rule.pattern.search(text):
                return rule.reply.replace("{text}", text)
        return f"{self._echo_prefix}{text}"

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        """Stream the reply to the last user message; nothing when there is none."""
        text = next((m.content.strip() for m in reversed(messages) if m.role == "user"), "")
        if not text:
            return
        reply = self.reply_to(text)
        logger.debug("scripted reply chosen", extra={"pii.user_text": text, "pii.reply": reply})
        for token in _TOKEN.findall(reply):
            # A checkpoint even without a delay, so a cancelled reply stops between words.
            if self._token_delay_s > 0:
                await anyio.sleep(self._token_delay_s)
            else:
                await checkpoint()
            yield token

    async def aclose(self) -> None:
        """Nothing to release."""
