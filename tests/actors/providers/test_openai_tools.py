"""OpenAiLlm's tool calling through the openai SDK against the wire fake: the tools offered,
tool-call deltas joined (arguments split anywhere, two calls in one reply), results fed back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from actors.providers import (
    ChatMessage,
    FallbackLlm,
    LlmItem,
    ScriptedLlm,
    ToolCall,
    ToolDefinition,
)
from actors.providers.openai_llm import OpenAiLlm
from tests.fakes.openai_fake import OpenAiFake

pytestmark = pytest.mark.anyio

ORDER = ToolDefinition(
    "order_status",
    "Look up an order.",
    {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
)
WEATHER = ToolDefinition("weather", "The weather in a city.", {"type": "object", "properties": {}})
ASK = (ChatMessage("user", "where are orders 42 and 43?", speaker="alice"),)


@pytest.fixture
async def llm(openai_fake: OpenAiFake) -> AsyncIterator[OpenAiLlm]:
    built = OpenAiLlm(
        api_key=openai_fake.api_key, model="gpt-fake", base_url=openai_fake.base_url, timeout_s=5
    )
    yield built
    await built.aclose()


async def items(llm: OpenAiLlm | FallbackLlm, messages: tuple[ChatMessage, ...]) -> list[LlmItem]:
    tools = (ORDER, WEATHER)
    return [item async for item in llm.complete_with_tools(messages, tools=tools)]


async def test_two_calls_with_split_arguments_come_out_whole(
    openai_fake: OpenAiFake, llm: OpenAiLlm
) -> None:
    first, second = '{"order_id": "42 \\u00e9"}', '{"order_id":"43"}'
    openai_fake.tool_calls = [
        [
            {"name": "order_status", "arguments": first},
            {"name": "order_status", "arguments": second},
        ]
    ]
    openai_fake.tool_argument_chunk = 3  # splits inside the strings and the escape
    got = await items(llm, ASK)
    calls = [item for item in got if isinstance(item, ToolCall)]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("order_status", {"order_id": "42 é"}),
        ("order_status", {"order_id": "43"}),
    ]
    assert calls[0].id != calls[1].id and all(c.id.startswith("call_") for c in calls)
    assert all(item == "" for item in got if isinstance(item, str))  # alive, nothing to say
    sent = openai_fake.requests[-1]["tools"]
    assert [t["function"]["name"] for t in sent] == ["order_status", "weather"]
    assert sent[0]["type"] == "function" and sent[0]["function"]["parameters"] == ORDER.parameters


async def test_text_before_the_calls_is_streamed_first(
    openai_fake: OpenAiFake, llm: OpenAiLlm
) -> None:
    openai_fake.replies = ["Let me check."]
    openai_fake.text_with_calls = True
    openai_fake.tool_calls = [[{"name": "weather", "arguments": "{}"}]]
    got = await items(llm, ASK)
    assert "".join(i for i in got if isinstance(i, str)) == "Let me check."
    assert isinstance(got[-1], ToolCall) and got[-1].name == "weather"


async def test_results_go_back_as_tool_messages_after_their_calls(
    openai_fake: OpenAiFake, llm: OpenAiLlm
) -> None:
    history = (
        *ASK,
        ChatMessage("assistant", "Let me check."),
        ChatMessage("tool_call", '{"order_id":"42"}', name="order_status", tool_call_id="c1"),
        ChatMessage("tool_call", '{"order_id":"43"}', name="order_status", tool_call_id="c2"),
        ChatMessage("tool", "42 shipped", name="order_status", tool_call_id="c1"),
        ChatMessage("tool", "43 shipped", name="order_status", tool_call_id="c2"),
        # A call cut by a barge-in before its result, and a result whose call fell out of the
        # restored history: neither may reach the API.
        ChatMessage("tool_call", "{}", name="weather", tool_call_id="lost"),
        ChatMessage("tool", "sunny", name="weather", tool_call_id="orphan"),
    )
    openai_fake.replies = ["Both have shipped."]
    got = await items(llm, history)
    assert "".join(i for i in got if isinstance(i, str)) == "Both have shipped."
    sent = openai_fake.requests[-1]["messages"]
    assert sent == [
        {"role": "user", "content": "where are orders 42 and 43?", "name": "alice"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "order_status", "arguments": '{"order_id":"42"}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "order_status", "arguments": '{"order_id":"43"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42 shipped"},
        {"role": "tool", "tool_call_id": "c2", "content": "43 shipped"},
    ]


async def test_without_tools_nothing_is_offered(openai_fake: OpenAiFake, llm: OpenAiLlm) -> None:
    assert "".join([d async for d in llm.complete(ASK)]) == "Echo: where are orders 42 and 43?"
    assert "tools" not in openai_fake.requests[-1]


async def test_the_fallback_chain_passes_calls_through(
    openai_fake: OpenAiFake, llm: OpenAiLlm
) -> None:
    openai_fake.tool_calls = [[{"name": "weather", "arguments": "{}"}]]
    chain = FallbackLlm([llm, ScriptedLlm()], timeout_s=5)
    got = await items(chain, ASK)
    assert [i.name for i in got if isinstance(i, ToolCall)] == ["weather"]
