"""Built-in tools: what the agent can do in the room itself, without an endpoint.

Adding one is one entry in ``BUILTINS``: its definition (what the model is offered) and a
function from the model's arguments (already validated against the definition's schema) to a
``ToolOutcome``: what the model is told, what the agent ``say``s at once, and what happens to
the room once the reply is over (``after_reply``, given the room's ``RoomControl``; a built-in
that needs more of the room adds a method there). ``[tool_calls] builtins`` picks the ones
offered.

A built-in that does what a command does obeys that command's ``[data] command_roles``: the
room checks the role of the participant whose turn led to the call before it runs (the model
acts on anyone's words, and any of them could ask it to end the call for everyone).
``hand_over`` has no such twin: the operators' ``hand_over`` command overrides who answers,
while the tool is the speaking agent's own judgement that a colleague should answer, which is
what any caller's question may lead to (as a reply's "over to you, Sam" does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.providers import ToolDefinition
from actors.tools._model import RoomControl, ToolOutcome
from actors.tools._settings import ToolCallSettings

__all__ = ("BUILTINS", "Builtin")

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Builtin:
    """One built-in tool.

    Attributes:
        definition: what the model is offered.
        run: the model's (validated) arguments to the outcome.
        command: its command twin: the caller needs a role ``[data] command_roles`` allows it
            (None: anyone's turn may lead to it).
        alone_may: the caller may use it without that role when they are the only person in
            the room (a 1:1 call's caller may hang up; with others there it ends theirs too).
    """

    definition: ToolDefinition
    run: Callable[[dict[str, Any], ToolCallSettings], ToolOutcome]
    command: str | None
    alone_may: bool = False


def _end_call(_arguments: dict[str, Any], settings: ToolCallSettings) -> ToolOutcome:
    def leave(room: RoomControl) -> None:
        room.request_stop("ended by the agent")

    return ToolOutcome("The call is ending.", say=settings.goodbye, after_reply=leave)


def _hand_over(arguments: dict[str, Any], _settings: ToolCallSettings) -> ToolOutcome:
    to = str(arguments["to"])

    def pass_turn(room: RoomControl) -> None:
        if not room.hand_over(to):
            logger.warning("hand-over to an agent not in the room", extra={"agent": to})

    return ToolOutcome(f"{to} answers once you have finished.", after_reply=pass_turn)


BUILTINS: dict[str, Builtin] = {
    "end_call": Builtin(
        ToolDefinition(
            "end_call",
            "End the call: the agent says goodbye and leaves. Use it when the caller says "
            "goodbye or asks to hang up.",
            {"type": "object", "properties": {}},
        ),
        _end_call,
        command="end",
        alone_may=True,
    ),
    "hand_over": Builtin(
        ToolDefinition(
            "hand_over",
            "Pass the conversation to another agent in the room, who answers next. Say a "
            "short sentence that you are handing over, then call it.",
            {
                "type": "object",
                "properties": {"to": {"type": "string", "description": "the agent's profile name"}},
                "required": ["to"],
            },
        ),
        _hand_over,
        command=None,
    ),
}
"""Every built-in tool, by name."""
