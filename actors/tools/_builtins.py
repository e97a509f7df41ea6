"""Built-in tools: what the agent can do in the room itself, without an endpoint.

Adding one is one entry in ``BUILTINS``: its definition (what the model is offered) and a
function from the model's arguments (already validated against the definition's schema) to a
``ToolOutcome``: what the model is told, what the agent ``say``s at once, and what happens to
the room once the reply is over (``after_reply``, given the room's ``RoomControl``; a built-in
that needs more of the room adds a method there). ``[tool_calls] builtins`` picks the ones
offered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.providers import ToolDefinition
from actors.tools._model import RoomControl, ToolOutcome
from actors.tools._settings import ToolCallSettings

__all__ = ("BUILTINS", "Builtin")


@dataclass(frozen=True, slots=True)
class Builtin:
    definition: ToolDefinition
    run: Callable[[dict[str, Any], ToolCallSettings], ToolOutcome]


def _end_call(_arguments: dict[str, Any], settings: ToolCallSettings) -> ToolOutcome:
    def leave(room: RoomControl) -> None:
        room.request_stop("ended by the agent")

    return ToolOutcome("The call is ending.", say=settings.goodbye, after_reply=leave)


BUILTINS: dict[str, Builtin] = {
    "end_call": Builtin(
        ToolDefinition(
            "end_call",
            "End the call: the agent says goodbye and leaves. Use it when the caller says "
            "goodbye or asks to hang up.",
            {"type": "object", "properties": {}},
        ),
        _end_call,
    ),
}
"""Every built-in tool, by name."""
