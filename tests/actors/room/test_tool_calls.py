"""The reply loop's tool calls on fakes (no server): rounds, the filler once per reply, the
apology, and what a barge-in (the stream closed) does to idempotent and other calls."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from anyio.abc import TaskStatus
from livekit import rtc

from actors._clock import SYSTEM_CLOCK
from actors._metrics import TOOL_CALLS
from actors._payloads import Payload, ToolCallData, ToolErrorData, ToolResultData
from actors.pipeline import BREAK
from actors.providers import ChatMessage, LlmItem, ToolCall, ToolDefinition
from actors.room import AgentProfile, ConversationHistory, DataSettings, RoomSpec, Speaks, Team
from actors.room._access import AccessPolicy
from actors.room._people import People
from actors.room._preempt import Preemption
from actors.room._state import Message, ParticipantState, SessionInfo
from actors.room._team import Seat
from actors.room._tool_calls import ToolCalls
from actors.tools import ToolBox, ToolCallSettings, ToolContext, ToolHttp, ToolOutcome, ToolSpec
from tests.fakes.recording_llm import RecordingLlm, Round

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


def script(*rounds: list[str]) -> RecordingLlm:
    """Each round: "Let me see." and the next list of calls (then "All done." once they run
    out)."""
    left = list(rounds)

    async def round_(
        _messages: Sequence[ChatMessage], _instructions: str | None, _tools: object
    ) -> AsyncIterator[LlmItem]:
        if not left:
            yield "All done."
            return
        yield "Let me see."
        for i, name in enumerate(left.pop(0)):
            yield ToolCall(f"c{len(llm.seen)}-{i}", name, "{}")

    llm = RecordingLlm(round_)
    return llm


class SeeingBox(ToolBox):
    """The process's tools, keeping the context each call was invoked with."""

    contexts: list[ToolContext]

    async def invoke(
        self, spec: ToolSpec, arguments: str, context: ToolContext, call_id: str
    ) -> ToolOutcome:
        self.contexts.append(context)
        return await super().invoke(spec, arguments, context, call_id)


@dataclass
class Host:
    spec: RoomSpec = field(default_factory=lambda: RoomSpec("r", "ws://x", "t"))
    conversation_id: str = "conv"
    session: SessionInfo = field(default_factory=lambda: SessionInfo("conv", "u"))
    history: ConversationHistory = field(default_factory=ConversationHistory)
    people: People = field(default_factory=People)
    access: AccessPolicy = field(default_factory=lambda: AccessPolicy(DataSettings()))
    events: list[Payload] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    seat: Seat | None = None

    def emit(self, payload: Payload) -> None:
        self.events.append(payload)

    def request_stop(self, reason: str) -> None:
        self.stopped.append(reason)

    def present(self, identity: str, role: str = "", kind: int = 0) -> None:
        attributes = {"agent.role": role} if role else {}
        self.people.states[identity] = ParticipantState(
            identity, identity, 0.0, attributes=attributes, kind=kind
        )


@dataclass
class Rig:
    calls: ToolCalls
    host: Host
    tools: SlowTools
    box: SeeingBox


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    tools = SlowTools()
    settings = ToolCallSettings(filler_after_ms=0, builtins=("end_call", "hand_over"))
    box = SeeingBox(settings, (), ToolHttp(settings, None, None), [tools])
    box.contexts = []
    host = Host()
    async with anyio.create_task_group() as tg:
        calls = ToolCalls(box, host.history, SYSTEM_CLOCK)
        calls.bind(tg, host)
        yield Rig(calls, host, tools, box)
        tg.cancel_scope.cancel()
    await box.aclose()


async def _said(rig: Rig, llm: RecordingLlm, speaker: str | None = "alice") -> list[str]:
    out = []
    rig.host.history.append(Message("user", "hi", 0.0, speaker))
    stream = rig.calls.stream(llm, None, anyio.Event())
    async for delta in stream:
        if "One moment." in delta:
            rig.tools.release.set()  # answered only once the filler is out
        out.append(delta)
    return out


async def test_two_rounds_say_the_filler_once_and_feed_results_back(rig: Rig) -> None:
    llm = script(["lookup", "lookup"], ["book"])
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
    said = "".join(await _said(rig, script(["fail"])))
    assert said.endswith(f"{BREAK}Sorry, I couldn't do that just now.{BREAK}")
    (error,) = [e for e in rig.host.events if isinstance(e, ToolErrorData)]
    assert error.code == "refused" and error.name == "fail"


async def test_closing_the_stream_cancels_lookups_and_lets_a_booking_finish(rig: Rig) -> None:
    llm = script(["lookup", "book"])
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
    early = script(["lookup"])  # generated on the likely-final words, with the tools
    llm = script()  # asked only for the round after the call
    async with anyio.create_task_group() as tg:
        preempted = Preemption("alice", "hi")
        preempted.start(tg, early, [], None, rig.calls.definitions())
        stream = rig.calls.stream(llm, None, anyio.Event(), preempted)
        said = "".join([delta async for delta in stream])
    assert [chunk for chunk in said.split(BREAK) if chunk] == ["Let me see.", "All done."]
    assert rig.tools.started == 1 and len(early.seen) == 1 and len(llm.seen) == 1
    assert [m.role for m in llm.seen[0]] == ["user", "assistant", "tool_call", "tool"]


# -- built-ins obey their command twin's roles ------------------------------------------------

REFUSAL = "Sorry, I'm not allowed to do that for you."


def _forbidden() -> float:
    counter = TOOL_CALLS.labels(source="builtin", outcome="forbidden")
    return float(counter._value.get())  # noqa: SLF001 - prometheus_client has no public read


async def _end_call(rig: Rig, speaker: str | None) -> str:
    """The speaker's turn makes the model call ``end_call``; what the agent said."""
    reply_done = anyio.Event()
    rig.host.history.append(Message("user", "bye", 0.0, speaker))
    said = "".join([d async for d in rig.calls.stream(script(["end_call"]), None, reply_done)])
    reply_done.set()
    await anyio.wait_all_tasks_blocked()  # an allowed end_call has stopped the room
    return said


async def test_a_role_less_caller_cannot_end_a_call_others_are_in(rig: Rig) -> None:
    rig.host.present("op", role="operator")
    rig.host.present("guest")
    rig.host.present("other-agent", kind=int(rtc.ParticipantKind.PARTICIPANT_KIND_AGENT))
    # The operator spoke earlier; the turn being answered is the guest's: the guest decides.
    rig.host.history.append(Message("user", "hello", 0.0, "op"))
    before = _forbidden()
    said = await _end_call(rig, "guest")
    assert said.endswith(f"{BREAK}{REFUSAL}{BREAK}") and "Goodbye!" not in said
    assert rig.host.stopped == []
    assert _forbidden() == before + 1
    (error,) = [e for e in rig.host.events if isinstance(e, ToolErrorData)]
    assert error.name == "end_call" and error.code == "forbidden"
    result = rig.host.history.messages[-1]  # what the model sees next time
    assert result.role == "tool" and result.content.startswith("error: forbidden: end_call")
    assert "'operator'" in result.content and "'none'" in result.content


async def test_an_unknown_or_absent_speaker_cannot_end_the_call(rig: Rig) -> None:
    rig.host.present("guest")
    rig.host.people.states["guest"].left_at = 1.0  # spoke, then left: nobody is alone here
    assert REFUSAL in await _end_call(rig, "guest")
    assert REFUSAL in await _end_call(rig, None)  # a turn with no speaker (restored, a bug)
    assert rig.host.stopped == []


@pytest.mark.parametrize(
    ("people", "speaker"),
    [
        ({"guest": ""}, "guest"),  # 1:1: the only person in the room may hang up
        ({"guest": "", "agent": "agent"}, "guest"),  # agents do not count as people
        ({"op": "operator", "guest": ""}, "op"),  # an operator may end it for everyone
    ],
)
async def test_an_operator_or_a_caller_alone_ends_the_call(
    rig: Rig, people: dict[str, str], speaker: str
) -> None:
    for identity, role in people.items():
        kind = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT if role == "agent" else 0
        rig.host.present(identity, role="" if role == "agent" else role, kind=int(kind))
    said = await _end_call(rig, speaker)
    assert said.endswith(f"{BREAK}Goodbye!{BREAK}")
    assert rig.host.stopped == ["ended by the agent"]
    assert not [e for e in rig.host.events if isinstance(e, ToolErrorData)]


async def test_hand_over_passes_the_turn_once_the_reply_is_over_whoever_asked(rig: Rig) -> None:
    answered: list[str] = []
    team = Team("r")
    roster = {
        "concierge": AgentProfile(identity="a-ava", name="Ava"),
        "specialist": AgentProfile(identity="a-sam", name="Sam", speaks=Speaks.WHEN_ADDRESSED),
    }
    seats = {n: team.join(n, roster, functools.partial(answered.append, n)) for n in roster}
    rig.host.seat = seats["concierge"]
    rig.host.present("guest")
    rig.host.present("other")  # not alone, no role: a hand-over needs neither
    reply_done = anyio.Event()
    rig.host.history.append(Message("user", "about my mortgage", 0.0, "guest"))
    llm = RecordingLlm(_calls(ToolCall("h1", "hand_over", '{"to": "specialist"}')))
    said = "".join([d async for d in rig.calls.stream(llm, None, reply_done)])
    await anyio.wait_all_tasks_blocked()
    assert answered == []  # the concierge's reply is not over yet
    reply_done.set()
    await anyio.wait_all_tasks_blocked()
    assert answered == ["specialist"] and "Over to Sam." in said
    assert not [e for e in rig.host.events if isinstance(e, ToolErrorData)]
    # To an agent that is not in the room: the model was told it goes ahead; nothing happens.
    answered.clear()
    await _run_to_end(rig, ToolCall("h2", "hand_over", '{"to": "nobody"}'))
    assert answered == [] and rig.host.stopped == []


def _calls(*calls: ToolCall) -> Round:
    """A first round of "Over to Sam." and ``calls``, then "Done."."""

    async def round_(
        messages: Sequence[ChatMessage], _instructions: str | None, _tools: object
    ) -> AsyncIterator[LlmItem]:
        if messages and messages[-1].role == "tool":
            yield "Done."
            return
        yield "Over to Sam."
        for call in calls:
            yield call

    return round_


async def _run_to_end(rig: Rig, call: ToolCall) -> None:
    reply_done = anyio.Event()
    rig.host.history.append(Message("user", "again", 0.0, "guest"))
    async for _ in rig.calls.stream(RecordingLlm(_calls(call)), None, reply_done):
        pass
    reply_done.set()
    await anyio.wait_all_tasks_blocked()


async def test_a_call_carries_the_speakers_identity_and_role(rig: Rig) -> None:
    rig.tools.release.set()
    rig.host.present("op", role="operator")
    rig.host.present("guest")
    await _said(rig, script(["lookup"]), speaker="op")
    await _said(rig, script(["lookup"]), speaker="guest")
    assert [(c.caller, c.caller_role) for c in rig.box.contexts] == [
        ("op", "operator"),
        ("guest", None),
    ]
