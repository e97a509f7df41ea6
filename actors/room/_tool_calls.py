"""Tool calls inside a reply: the model asks, the tools run, the model goes on.

``ToolCalls.stream`` stands where the reply's LLM stream stood and yields the same text deltas
(without tools, only them), plus words said at once (between ``BREAK``s, which end the chunk
being written so it is spoken now). A preemptive generation's items are its first round.

A round of the model that ends with tool calls starts them all (in the room's task group),
says what the model said before them, says ``[tool_calls] filler`` once per reply if they have
not answered after ``filler_after_ms``, and gives their results back to the model for the
next round (at most ``max_rounds``). A failed call is a short spoken apology and a
``tool_error`` event; the room goes on.

Barge-in: the reply's scope is cancelled, which closes this stream. Idempotent calls still
running are cancelled (recorded as ``cancelled``); a call that is not idempotent (a booking)
runs to its end in the room's task group and its result is recorded, so the next reply's model
knows what happened. Each call and its result are messages of the history (``tool_call``,
``tool``) and events (``tool_call``, ``tool_result`` or ``tool_error``, with timing).

Built-in tools' outcomes act on the room: ``say`` is spoken as it is, and ``after_reply``
(``end_call``: stop the actor) runs once the reply is over. A built-in obeys its command twin's
``[data] command_roles``, checked when the call starts against the speaker of the turn being
answered (the history's last user turn): refused, it is ``[tool_calls] refusal`` spoken, a
``tool_error`` (``forbidden``) the model sees, and counted. Every call carries the speaker's
identity and role to its endpoint, which authorises its own tools with them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import anyio
from anyio.abc import TaskGroup

from actors._clock import Clock
from actors._exceptions import ToolError
from actors._metrics import TOOL_CALLS, TOOL_SECONDS
from actors._payloads import Payload, ToolCallData, ToolErrorData, ToolResultData
from actors.pipeline import BREAK
from actors.providers import (
    ChatMessage,
    LlmItem,
    LlmProvider,
    ToolCall,
    ToolCallingLlm,
    ToolDefinition,
)
from actors.room._access import AccessPolicy
from actors.room._messages import RoomSpec
from actors.room._people import People
from actors.room._preempt import Preemption
from actors.room._state import ConversationHistory, Message, SessionInfo
from actors.room._team import Seat
from actors.tools import (
    BUILTINS,
    RoomControl,
    ToolBox,
    ToolCallSettings,
    ToolContext,
    ToolOutcome,
    ToolSpec,
)

__all__ = ("ToolCalls", "ToolHost", "chat_messages")

logger = logging.getLogger(__name__)


def chat_messages(messages: Sequence[Message]) -> list[ChatMessage]:
    """The history as the model sees it (tool calls and results included)."""
    return [ChatMessage(m.role, m.content, m.speaker, m.name, m.tool_call_id) for m in messages]


def _now(text: str = "") -> str:
    """``text`` said at once, after what the model said before it."""
    return f"{BREAK}{text}{BREAK}"


class ToolHost(Protocol):
    """What tool calls need of the room actor."""

    spec: RoomSpec
    conversation_id: str
    session: SessionInfo
    history: ConversationHistory
    people: People
    access: AccessPolicy
    seat: Seat | None
    """Its place in the room's team (None before it joined)."""

    def emit(self, payload: Payload) -> None: ...

    def request_stop(self, reason: str) -> None: ...


@dataclass(slots=True)
class _Pending:
    call: ToolCall
    spec: ToolSpec | None
    started_at: float
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    finished: anyio.Event = field(default_factory=anyio.Event)
    outcome: ToolOutcome | None = None


class ToolCalls:
    """The tools of one room, and how its replies call them (none until ``bind``).

    Args:
        box: the process's tools (None: none).
        history: the room's conversation (calls and results are added to it).
        clock: time source.
    """

    def __init__(self, box: ToolBox | None, history: ConversationHistory, clock: Clock) -> None:
        self._box = box
        self._history = history
        self._settings = box.settings if box is not None else ToolCallSettings()
        self._clock = clock
        self._host: ToolHost | None = None
        self._tg: TaskGroup | None = None

    def bind(self, tg: TaskGroup, host: ToolHost | None) -> None:
        """Offer the tools from now on: calls run in ``tg`` (the actor's, so one can outlive
        its reply) and are recorded through ``host`` (None: no tools)."""
        self._tg, self._host = tg, host

    def offered(self) -> tuple[ToolSpec, ...]:
        """The room's tools now: the process's, narrowed by metadata ``"tools": [...]``."""
        if self._box is None or self._host is None:
            return ()
        names = self._host.session.raw.get("tools")
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return self._box.offered(names)
        return self._box.offered()

    def history(self) -> list[ChatMessage]:
        """The conversation as the model sees it now."""
        return chat_messages(self._history.messages)

    def definitions(self) -> tuple[ToolDefinition, ...]:
        """What the model is offered."""
        return tuple(spec.definition for spec in self.offered())

    async def stream(
        self,
        llm: LlmProvider,
        instructions: str | None,
        reply_done: anyio.Event,
        preempted: Preemption | None = None,
    ) -> AsyncGenerator[str]:
        """The reply's text deltas and the words said at once, tool calls in between.

        Args:
            llm: the model (it sees the history, the turn being answered last).
            instructions: the system prompt ("" or None: the model's default).
            reply_done: set when the reply is over (``after_reply`` actions wait for it).
            preempted: the generation started on the likely-final words, adopted by the
                reply: its items are the first round.

        Raises:
            ProviderError: the model failed (the pipeline apologises).
        """
        offered = {spec.name: spec for spec in self.offered()}
        definitions = [spec.definition for spec in offered.values()]
        context, instructions = self.history(), instructions or None
        caller = next((m.speaker for m in reversed(context) if m.role == "user"), None)
        first = None if preempted is None else preempted.deltas()  # generating already
        filler = self._settings.filler
        for _ in range(self._settings.max_rounds):
            items: AsyncGenerator[LlmItem] = (
                first
                if first is not None
                else llm.complete_with_tools(context, instructions=instructions, tools=definitions)
                if definitions and isinstance(llm, ToolCallingLlm)
                else llm.complete(context, instructions=instructions)
            )
            first = None
            said, calls = "", []
            try:
                async for item in items:
                    if isinstance(item, ToolCall):
                        calls.append(item)
                    else:
                        said += item
                        yield item
            finally:
                await items.aclose()
            if not calls:
                return
            if not offered:  # a model that calls tools nobody offered: it said what it said
                return
            pending = [self._start(call, offered.get(call.name), caller) for call in calls]
            try:
                yield _now()  # what the model said before its calls, spoken while they run
                wait_s = self._settings.filler_after_ms / 1000
                with anyio.move_on_after(
                    wait_s - (self._clock.monotonic() - pending[0].started_at)
                ):
                    await _all_finished(pending)
                if filler and not all(p.finished.is_set() for p in pending):
                    filler = ""  # once per reply
                    yield _now(self._settings.filler)
                await _all_finished(pending)
            finally:
                for p in pending:
                    if not p.finished.is_set() and (p.spec is None or p.spec.idempotent):
                        p.scope.cancel("the reply was cut")  # not yet said: not wanted now
            outcomes = [p.outcome for p in pending if p.outcome is not None]
            failed = [o for o in outcomes if not o.ok]
            if failed:  # a refused built-in says so (its ``say``); any other failure is sorry
                yield _now(next((o.say for o in failed if o.say), self._settings.apology))
                return
            for outcome in outcomes:
                if outcome.say:
                    yield _now(outcome.say)
            afters = [o.after_reply for o in outcomes if o.after_reply is not None]
            if afters:
                self._task_group.start_soon(self._after, reply_done, afters, name="tools:after")
            if afters or any(o.say for o in outcomes):
                return  # a built-in spoke or acted for the agent: the model is not asked again
            if said.strip():
                context.append(ChatMessage("assistant", said))
            for p in pending:
                context.append(
                    ChatMessage("tool_call", p.call.arguments, None, p.call.name, p.call.id)
                )
            for p, outcome in zip(pending, outcomes, strict=True):
                context.append(ChatMessage("tool", outcome.content, None, p.call.name, p.call.id))
        logger.warning("a reply reached [tool_calls] max_rounds; it ends there")

    @property
    def _task_group(self) -> TaskGroup:
        if self._tg is None:
            raise RuntimeError("ToolCalls used before bind()")
        return self._tg

    @property
    def _bound_host(self) -> ToolHost:
        if self._host is None:
            raise RuntimeError("ToolCalls used before bind()")
        return self._host

    def _start(self, call: ToolCall, spec: ToolSpec | None, caller: str | None) -> _Pending:
        pending = _Pending(call, spec, self._clock.monotonic())
        host = self._bound_host
        source = None if spec is None else spec.source
        self._record(
            Message(
                "tool_call", call.arguments, self._clock.now(), None, False, call.name, call.id
            ),
            ToolCallData(call.id, call.name, call.arguments, source, caller, host.session.user_id),
        )
        # Who asked is looked up now, at call time: their role and who else is in the room.
        participant = None if caller is None else host.people.get(caller)
        role = host.access.role_of(participant) or None
        context = ToolContext(host.conversation_id, host.spec.room, caller, role)
        refusal = None
        builtin = BUILTINS[spec.name] if spec is not None and spec.source == "builtin" else None
        if builtin is not None and builtin.command is not None:
            alone = builtin.alone_may and host.people.callers() == [caller]
            refusal = host.access.tool_refusal(call.name, builtin.command, participant, alone=alone)
        self._task_group.start_soon(self._run, pending, context, refusal, name=f"tool:{call.name}")
        return pending

    async def _run(self, pending: _Pending, context: ToolContext, refusal: str | None) -> None:
        call, spec = pending.call, pending.spec
        outcome = ToolOutcome("error: cancelled", ok=False, error="cancelled")
        with pending.scope:
            try:
                if refusal is not None:
                    logger.info("built-in tool refused", extra={"tool": call.name})
                    say = self._settings.refusal
                    outcome = ToolOutcome(
                        f"error: forbidden: {refusal}", False, "forbidden", say=say
                    )
                elif spec is None:
                    raise ToolError(
                        "the model called a tool it was not offered", code="unknown_tool"
                    )
                else:
                    assert self._box is not None  # offered() is empty without a box
                    outcome = await self._box.invoke(spec, call.arguments, context, call.id)
            except ToolError as exc:
                outcome = ToolOutcome(f"error: {exc.code}", ok=False, error=exc.code)
        pending.outcome = outcome
        seconds = self._clock.monotonic() - pending.started_at
        source = "unknown" if spec is None else spec.source.partition(":")[0]
        TOOL_CALLS.labels(source=source, outcome=outcome.error or "ok").inc()
        TOOL_SECONDS.labels(source=source).observe(seconds)
        ms, user = round(seconds * 1000, 3), self._bound_host.session.user_id
        payload: Payload
        if outcome.ok:
            payload = ToolResultData(
                call.id, call.name, outcome.content, ms, outcome.attempts, user
            )
        else:
            logger.warning("tool call failed", extra={"tool": call.name, "error": outcome.error})
            error = outcome.error or "refused"
            payload = ToolErrorData(call.id, call.name, error, outcome.content, ms, 1, user)
        message = Message(
            "tool", outcome.content, self._clock.now(), None, False, call.name, call.id
        )
        self._record(message, payload)
        pending.finished.set()

    def _record(self, message: Message, payload: Payload) -> None:
        host = self._bound_host
        host.history.append(message)
        host.emit(payload)

    async def _after(
        self, reply_done: anyio.Event, actions: list[Callable[[RoomControl], None]]
    ) -> None:
        await reply_done.wait()  # what it said has played out, and the reply is recorded
        room = _Room(self._bound_host)
        for action in actions:
            action(room)


@dataclass(frozen=True, slots=True)
class _Room:
    """What built-ins may do to the room (``RoomControl``), through the actor."""

    host: ToolHost

    def request_stop(self, reason: str) -> None:
        self.host.request_stop(reason)

    def hand_over(self, to: str) -> bool:
        return self.host.seat is not None and self.host.seat.hand_over(to)


async def _all_finished(pending: Sequence[_Pending]) -> None:
    for p in pending:
        await p.finished.wait()
