"""The offline language model: rule replies and echo, streamed word by word.

``ScriptedLlm`` answers the last user message with the first matching rule's reply, else with
``echo_prefix`` followed by the user's words. It never touches the network, so it is the
embedded default and the stand-in for a real model in tests. It never logs what was said
except at DEBUG under ``pii.*`` keys.

A rule with a ``tool`` calls that tool (when the room offers it) with its ``arguments``
filled from the user's words; once the result is back (the last message is the ``tool``
result), the rule's ``reply`` is said with ``{result}`` replaced by it.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

import anyio
from anyio.lowlevel import checkpoint

from actors.providers._base import ChatMessage, LlmItem, ToolCall, ToolDefinition
from actors.providers._settings import LlmSettings, Rule

__all__ = ("ScriptedLlm",)

logger = logging.getLogger(__name__)

# A token is a word with the whitespace that follows it, so joining the tokens gives the reply.
_TOKEN = re.compile(r"\s*\S+\s*")
_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    pattern: re.Pattern[str]
    reply: str
    tool: str | None = None
    arguments: dict[str, str] = field(default_factory=dict)


def _compile(rule: Rule) -> _CompiledRule:
    if rule.match is not None:
        pattern = re.compile(rule.match, re.IGNORECASE)
    else:
        words = "|".join(re.escape(word) for word in rule.keywords)
        pattern = re.compile(rf"\b(?:{words})\b", re.IGNORECASE)
    return _CompiledRule(pattern, rule.reply, rule.tool, dict(rule.arguments))


def _fill(template: str, values: dict[str, str]) -> str:
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)


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

    def reply_to(self, text: str, tools: frozenset[str] = frozenset()) -> str | ToolCall:
        """The full reply to ``text`` (what ``complete`` streams), or the tool call of the
        first matching rule whose tool is among ``tools``."""
        for rule in self._rules:
            found = rule.pattern.search(text)
            if found is None or (rule.tool is not None and rule.tool not in tools):
                continue
            if rule.tool is not None:
                values = {"text": text, **{k: v or "" for k, v in found.groupdict().items()}}
                arguments = {k: _fill(v, values) for k, v in rule.arguments.items()}
                return ToolCall("call_" + uuid.uuid4().hex[:12], rule.tool, json.dumps(arguments))
            return rule.reply.replace("{text}", text)
        return f"{self._echo_prefix}{text}"

    def _after_tool(self, messages: Sequence[ChatMessage]) -> str:
        """The reply once the tool of the last user message's rule has answered."""
        result = messages[-1].content
        text = next((m.content.strip() for m in reversed(messages) if m.role == "user"), "")
        rule = next((r for r in self._rules if r.tool and r.pattern.search(text)), None)
        template = rule.reply if rule is not None and rule.reply else "{result}"
        return template.replace("{result}", result).replace("{text}", text)

    async def complete_with_tools(
        self,
        messages: Sequence[ChatMessage],
        *,
        instructions: str | None = None,
        tools: Sequence[ToolDefinition] = (),
    ) -> AsyncGenerator[LlmItem]:
        """``complete``, or a rule's tool call; after a ``tool`` result, the rule's reply."""
        if messages and messages[-1].role == "tool":
            reply: str | ToolCall = self._after_tool(messages)
        else:
            text = next((m.content.strip() for m in reversed(messages) if m.role == "user"), "")
            if not text:
                return
            reply = self.reply_to(text, frozenset(tool.name for tool in tools))
        if isinstance(reply, ToolCall):
            await checkpoint()
            yield reply
            return
        async for token in self._stream(reply):
            yield token

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        """Stream the reply to the last user message; nothing when there is none."""
        text = next((m.content.strip() for m in reversed(messages) if m.role == "user"), "")
        if not text:
            return
        reply = self.reply_to(text)
        assert isinstance(reply, str)  # no tools offered: never a call
        logger.debug("scripted reply chosen", extra={"pii.user_text": text, "pii.reply": reply})
        async for token in self._stream(reply):
            yield token

    async def _stream(self, reply: str) -> AsyncGenerator[str]:
        for token in _TOKEN.findall(reply):
            # A checkpoint even without a delay, so a cancelled reply stops between words.
            if self._token_delay_s > 0:
                await anyio.sleep(self._token_delay_s)
            else:
                await checkpoint()
            yield token

    async def aclose(self) -> None:
        """Nothing to release."""
