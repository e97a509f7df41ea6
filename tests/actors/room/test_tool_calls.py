"""The reply loop's tool calls on fakes (no server): rounds, the filler once per reply, the
apology, and what a barge-in (the stream closed) does to idempotent and other calls."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from anyio.abc import TaskStatus

from actors._clock import SYSTEM_CLOCK
from actors._payloads import Payload, ToolCallData, ToolErrorData, ToolResultData
from actors.pipeline import BREAK
from actors.providers import ChatMessage, LlmItem, ToolCall, ToolDefinition
from actors.room import ConversationHistory, RoomSpec
from actors.room._preempt import Preemption
from actors.room._state import Message, SessionInfo
from actors.room._tool_calls import ToolCalls
from actors.tools import ToolBox, ToolCallSettings, ToolHttp, ToolOutcome, ToolSpec

pytestmark = pytest.mark.anyio


class SlowTools:
    """A remote source whose calls wait until the test releases them."""

    name = "fake"

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.started = 0
        schema = {"type": "object", "properties": {}}
        self.tools = (
            ToolSpec(ToolDefinition("lookup", "A lookup.", schema), "mcp:fake", idempotent=True),
            ToolSpec(ToolDefinition("book", "A booking.", schema), "mcp:fake", idempotent=False),
            ToolSpec(ToolDefinition("fail", "Fails.", schema), "mcp:fake", idempotent=True),
        )

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        task_status.started()

    async def call(self, spec: ToolSpec, arguments: dict[str, Any]) -> ToolOutcome:
        self.started += 1
        await self.release.wait()
        if spec.name == "fail":
            from actors import ToolError

            raise ToolError("failed", code="refused")
        return ToolOutcome(f"{spec.name} done")


class ScriptLlm:
    """Each round: the next list of calls (then text once calls run out)."""

    name = "script"

    def __init__(self, *rounds: list[str]) -> None:
        self.rounds = list(rounds)
        self.seen: list[list[ChatMessage]] = []

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        yield "text only"

    async def complete_with_tools(
        self,
        messages: Sequence[ChatMessage],
        *,
        instructions: str | None = None,
        tools: Sequence[ToolDefinition] = (),
    ) -> AsyncGenerator[LlmItem]:
        self.seen.append(list(messages))
        if not self.rounds:
            yield "All done."
            return
        yield "Let me see."
        for i, name in enumerate(self.rounds.pop(0)):
            yield ToolCall(f"c{len(self.seen)}-{i}", name, "{}")

    async def aclose(self) -> None:
        pass


@dataclass
class Host:
    spec: RoomSpec = field(default_factory=lambda: RoomSpec("r", "ws://x", "t"))
    conversation_id: str = "conv"
    session: SessionInfo = field(default_factory=lambda: SessionInfo("conv", "u"))
    history: ConversationHistory = field(default_factory=ConversationHistory)
    events: list[Payload] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def emit(self, payload: Payload) -> None:
        self.events.append(payload)

    def request_stop(self, reason: str) -> None:
        self.stopped.append(reason)


@dataclass
class Rig:
    calls: ToolCalls
    host: Host
    tools: SlowTools


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    tools = SlowTools()
    settings = ToolCallSettings(filler_after_ms=0, builtins=())
    box = ToolBox(settings, (), ToolHttp(settings, None, None), [tools])
    host = Host()
    async with anyio.create_task_group() as tg:
        calls = ToolCalls(box, host.history, SYSTEM_CLOCK)
        calls.bind(tg, host)
        yield Rig(calls, host, tools)
        tg.cancel_scope.cancel()
    await box.aclose()


async def _said(rig: Rig, llm: ScriptLlm) -> list[str]:
    out = []
    rig.host.history.append(Message("user", "hi", 0.0, "alice"))
    stream = rig.calls.stream(llm, None, anyio.Event())
    async for delta in stream:
        if "One moment." in delta:
            rig.tools.release.set()  # answered only once the filler is out
        out.append(delta)
    return out


async def test_two_rounds_say_the_filler_once_and_feed_results_back(rig: Rig) -> None:
    llm = ScriptLlm(["lookup", "lookup"], ["book"])
    said = "".join(await _said(rig, llm))
    chunks = [chunk for chunk in said.split(BREAK) if chunk]
    assert chunks == ["Let me see.", "One moment.", "Let me see.", "All done."]  # filler once
    last = llm.seen[-1]  # the third round saw both rounds' calls, each followed by results
    roles = [m.role for m in last]
    assert roles == ["user", *["assistant", "tool_call", "tool_call", "tool", "tool"]] + [
        "assistant",
        "tool_call",
        "tool",
    ]
    assert last[-1].content == "book done" and last[-1].tool_call_id == last[-2].tool_call_id
    kinds = [type(e) for e in rig.host.events]
    assert kinds.count(ToolCallData) == 3 and kinds.count(ToolResultData) == 3
    roles = [m.role for m in rig.host.history.messages]
    assert roles.count("tool_call") == 3 and roles.count("tool") == 3


async def test_a_failed_call_is_an_apology_and_the_reply_ends(rig: Rig) -> None:
    said = "".join(await _said(rig, ScriptLlm(["fail"])))
    assert said.endswith(f"{BREAK}Sorry, I couldn't do that just now.{BREAK}")
    (error,) = [e for e in rig.host.events if isinstance(e, ToolErrorData)]
    assert error.code == "refused" and error.name == "fail"


async def test_closing_the_stream_cancels_lookups_and_lets_a_booking_finish(rig: Rig) -> None:
    llm = ScriptLlm(["lookup", "book"])
    rig.host.history.append(Message("user", "hi", 0.0))
    stream = rig.calls.stream(llm, None, anyio.Event())
    async for delta in stream:
        if "One moment." in delta:
            break  # the barge-in: what is not yet said is not wanted
    await stream.aclose()
    await anyio.wait_all_tasks_blocked()  # the cancelled lookup's task has recorded it
    errors = [e for e in rig.host.events if isinstance(e, ToolErrorData)]
    assert [(e.name, e.code) for e in errors] == [("lookup", "cancelled")]
    rig.tools.release.set()
    await anyio.wait_all_tasks_blocked()  # the booking's task has recorded its result
    (result,) = [e for e in rig.host.events if isinstance(e, ToolResultData)]
    assert result.name == "book" and result.content == "book done"


async def test_an_adopted_preemptive_round_is_the_first_and_its_call_runs(rig: Rig) -> None:
    rig.tools.release.set()
    rig.host.history.append(Message("user", "hi", 0.0))
    early = ScriptLlm(["lookup"])  # generated on the likely-final words, with the tools
    llm = ScriptLlm()  # asked only for the round after the call
    async with anyio.create_task_group() as tg:
        preempted = Preemption("alice", "hi")
        preempted.start(tg, early, [], None, rig.calls.definitions())
        stream = rig.calls.stream(llm, None, anyio.Event(), preempted)
        said = "".join([delta async for delta in stream])
    assert [chunk for chunk in said.split(BREAK) if chunk] == ["Let me see.", "All done."]
    assert rig.tools.started == 1 and len(early.seen) == 1 and len(llm.seen) == 1
    assert [m.role for m in llm.seen[0]] == ["user", "assistant", "tool_call", "tool"]
