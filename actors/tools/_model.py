"""What a tool is once its source is known, and what one call of it needs and gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from actors.providers import ToolDefinition

__all__ = ("RoomControl", "ToolContext", "ToolOutcome", "ToolSpec")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool the agent may offer.

    Attributes:
        definition: what the model sees (name, description, parameters).
        source: ``builtin``, ``config``, ``backend`` or ``mcp:<server>``.
        idempotent: safe to retry, and to cancel on a barge-in.
        timeout_s: how long one attempt may take.
        url: the HTTP endpoint (config and backend tools), else None.
    """

    definition: ToolDefinition
    source: str
    idempotent: bool = False
    timeout_s: float = 5.0
    url: str | None = None

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who asks, for the tool's endpoint: the contract's invoke body carries all of it."""

    conversation_id: str
    room: str
    caller: str | None
    """The identity of the participant whose turn led to the call, when known."""
    caller_role: str | None = None
    """Their role (``[data] role_attribute``, as the agent trusts it), None when they have none:
    the backend authorises its own tools with it."""


class RoomControl(Protocol):
    """What a built-in tool may do to its room (through ``ToolOutcome.after_reply``)."""

    def request_stop(self, reason: str) -> None:
        """End the agent's session in the room (it saves the session and leaves)."""
        ...

    def hand_over(self, to: str) -> bool:
        """Pass the turn to the room's agent ``to`` (a profile name), which then answers;
        False when no such agent speaks in the room."""
        ...


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """How one call ended.

    Attributes:
        content: what the model is given (the result as text, or a short error note).
        ok: the tool answered.
        error: the failure's code when not ``ok`` (``timeout``, ``unavailable``, ``refused``,
            ``invalid_arguments``, ``too_large``, ``unknown_tool``, ``cancelled``, ``forbidden``).
        attempts: how many attempts were made.
        say: what the agent says now, as it is (a built-in's words: ``end_call``'s goodbye, or
            the refusal of a built-in the caller may not use).
        after_reply: what a built-in does to the room once the reply is over (``end_call``:
            ends the session). With ``say`` or this, the model is not asked to go on.
    """

    content: str
    ok: bool = True
    error: str | None = None
    attempts: int = 1
    say: str = ""
    after_reply: Callable[[RoomControl], None] | None = None
