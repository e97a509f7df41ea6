"""The scripted LLM's tool rules: a rule calls its tool (when offered), then speaks the result."""

from __future__ import annotations

import json

import pytest

from actors.providers import ChatMessage, LlmItem, Rule, ScriptedLlm, ToolCall, ToolDefinition

pytestmark = pytest.mark.anyio

ORDER = ToolDefinition("order_status", "Look up an order.", {"type": "object"})
RULE = Rule(
    match=r"order (?P<order_id>\w+)",
    tool="order_status",
    arguments={"order_id": "{order_id}"},
    reply="Here is what I found: {result}",
)


async def run(
    llm: ScriptedLlm, messages: list[ChatMessage], *tools: ToolDefinition
) -> list[LlmItem]:
    return [item async for item in llm.complete_with_tools(messages, tools=tools)]


async def test_a_rule_calls_its_tool_then_speaks_the_result() -> None:
    llm = ScriptedLlm(rules=[RULE])
    asked = [ChatMessage("user", "where is order A17 please")]
    (call,) = await run(llm, asked, ORDER)
    assert isinstance(call, ToolCall) and call.name == "order_status"
    assert json.loads(call.arguments) == {"order_id": "A17"}
    answered = [
        *asked,
        ChatMessage("tool_call", call.arguments, name=call.name, tool_call_id=call.id),
        ChatMessage("tool", "It ships today.", name=call.name, tool_call_id=call.id),
    ]
    assert "".join(str(i) for i in await run(llm, answered, ORDER)) == (
        "Here is what I found: It ships today."
    )


async def test_without_the_tool_offered_the_rule_is_skipped() -> None:
    llm = ScriptedLlm(rules=[RULE])
    got = await run(llm, [ChatMessage("user", "where is order A17")])
    assert "".join(str(i) for i in got) == "You said: where is order A17"


def test_a_rule_needs_a_reply_or_a_tool() -> None:
    with pytest.raises(ValueError, match="reply"):
        Rule(keywords=("x",))
