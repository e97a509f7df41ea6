"""The chat history as an OpenAI-compatible server takes it (``messages`` of a completion).

Two dialects (``[llm] compat``). ``openai`` is OpenAI's own: several people may talk in one
room, so each user message carries the speaker in ``name``. ``strict`` is for servers that
refuse what OpenAI accepts: Groq and other gateways answer 400 to ``messages[].name``, and strict
chat templates (Mistral or Gemma on vLLM, llama.cpp) refuse roles that do not alternate
user/assistant, which a room produces all the time (the agent's greeting first, two people
speaking in a row). This module only shapes data: no I/O, no logging.

Tool calls (``tool_call`` messages) become an assistant message's ``tool_calls`` (consecutive
ones share one message, after the text the assistant said just before them), and results
(``tool``) ``tool`` messages. OpenAI refuses a call without its result and a result without its
call, and a history cut at ``history_limit`` or a barge-in can leave either alone: those are
left out. ``strict`` servers get them as text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from actors.providers._base import ChatMessage, ToolDefinition
from actors.providers._settings import LlmCompat

__all__ = ("chat_payload", "is_strict", "tools_payload")

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")  # the API's pattern for a message "name"
_NAME_MAX = 64


def _speaker_name(speaker: str) -> str:
    return _NAME_UNSAFE.sub("_", speaker)[:_NAME_MAX]


def chat_payload(
    messages: Sequence[ChatMessage], instructions: str, compat: LlmCompat
) -> list[ChatCompletionMessageParam]:
    """``messages`` after the system prompt ``instructions``, in the ``compat`` dialect."""
    messages = _paired(messages)
    if compat == "strict":
        return _strict(messages, instructions)
    payload: list[ChatCompletionMessageParam] = []
    if instructions:
        payload.append({"role": "system", "content": instructions})
    for message in messages:
        if message.role == "tool_call":
            call: Any = {
                "id": message.tool_call_id,
                "type": "function",
                "function": {"name": message.name, "arguments": message.content or "{}"},
            }
            last: Any = payload[-1] if payload else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)  # text, then its calls
            else:
                payload.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif message.role == "tool":
            payload.append(
                {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id or "",
                    "content": message.content,
                }
            )
        elif message.role == "system":
            payload.append({"role": "system", "content": message.content})
        elif message.role == "assistant":
            payload.append({"role": "assistant", "content": message.content})
        elif message.speaker:
            # Several people may talk in one room: the name tells the model who said what.
            name = _speaker_name(message.speaker)
            payload.append({"role": "user", "content": message.content, "name": name})
        else:
            payload.append({"role": "user", "content": message.content})
    return payload


def tools_payload(tools: Sequence[ToolDefinition]) -> list[ChatCompletionToolParam]:
    """The ``tools`` of a completion request."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in tools
    ]


def _paired(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """``messages`` with each run of tool calls followed by its results (a call that outlived
    a barge-in has its result after the next user turn), without calls that have no result
    or results that have no call."""
    results = {m.tool_call_id: m for m in messages if m.role == "tool"}
    calls = {m.tool_call_id for m in messages if m.role == "tool_call"}
    kept: list[ChatMessage] = []
    run: list[ChatMessage] = []  # the calls of the current run, waiting for their results

    def close_run() -> None:
        kept.extend(results[call.tool_call_id] for call in run)
        run.clear()

    for message in messages:
        if message.role == "tool_call":
            if message.tool_call_id in results:
                kept.append(message)
                run.append(message)
            continue
        close_run()
        if message.role == "tool":
            continue  # placed after its call (or dropped: its call is not in the history)
        kept.append(message)
    close_run()
    return [m for m in kept if m.role != "tool" or m.tool_call_id in calls]


def is_strict(payload: Sequence[ChatCompletionMessageParam]) -> bool:
    """Whether even a strict server takes ``payload``: no ``name``, and after the system
    prompt, roles alternating from the user's."""
    if any("name" in message for message in payload):
        return False
    roles = [message["role"] for message in payload]
    while roles and roles[0] == "system":
        roles.pop(0)
    return all(role == ("user" if i % 2 == 0 else "assistant") for i, role in enumerate(roles))


def _strict(messages: Sequence[ChatMessage], instructions: str) -> list[ChatCompletionMessageParam]:
    """One system message, then user and assistant strictly alternating, user first."""
    system = [instructions] if instructions else []
    turns: list[tuple[str, list[str]]] = []  # (role, contents), merged by role
    for message in messages:
        if message.role == "system":
            system.append(message.content)  # the templates take a system prompt only first
            continue
        role = "assistant" if message.role in ("assistant", "tool_call") else "user"
        content = message.content
        if message.role == "tool_call":
            content = f"[I called the tool {message.name} with {message.content or '{}'}]"
        elif message.role == "tool":
            content = f"[The tool {message.name} answered: {message.content}]"
        elif role == "user" and message.speaker:
            content = f"{message.speaker}: {content}"  # no ``name``: who spoke goes in the text
        if turns and turns[-1][0] == role:
            turns[-1][1].append(content)
        else:
            turns.append((role, [content]))
    if turns and turns[0][0] == "assistant":
        # The agent spoke first (its greeting): the templates want the user first, and an
        # invented user message would be words nobody said. The prompt keeps what was said.
        opening = " ".join(turns.pop(0)[1])
        system.append(f'You opened the call by saying: "{opening}"')
    payload: list[ChatCompletionMessageParam] = []
    if system:
        payload.append({"role": "system", "content": "\n\n".join(system)})
    for role, contents in turns:
        text = "\n".join(contents)
        if role == "assistant":
            payload.append({"role": "assistant", "content": text})
        else:
            payload.append({"role": "user", "content": text})
    return payload
