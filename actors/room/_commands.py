"""Commands participants send the agent as JSON on the ``agent.command`` topic.

``{"id": "c1", "command": "say", "text": "Hello"}``; every command is answered on
``agent.reply`` with ``{"id", "ok", "error", ...}``. In a room with several agents a command is
for the one its ``agent`` names (its profile name), else for the room's first agent; the
others ignore it. Input is validated strictly; anything malformed gets an error reply naming
the problem, never an exception in the room.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from actors.room._settings import DEFAULT_COMMAND_ROLES

__all__ = ("COMMAND_NAMES", "Command", "CommandError", "parse_command")


class _Base(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(default="", max_length=128)
    agent: str = Field(default="", max_length=64)


class Say(_Base):
    command: Literal["say"]
    text: str = Field(min_length=1, max_length=2000)


class Mute(_Base):
    """Stop the agent's voice (it keeps listening and captions its answers)."""

    command: Literal["mute"]


class Unmute(_Base):
    command: Literal["unmute"]


class Interrupt(_Base):
    """Cut the agent's current reply."""

    command: Literal["interrupt"]


class Reset(_Base):
    """Forget the conversation so far (in memory; stored turns stay stored)."""

    command: Literal["reset"]


class End(_Base):
    """End the session: the agent saves it and leaves the room."""

    command: Literal["end"]


class Instructions(_Base):
    """Replace this room's LLM instructions."""

    command: Literal["instructions"]
    text: str = Field(min_length=1, max_length=8000)


class Status(_Base):
    command: Literal["status"]


class Ping(_Base):
    command: Literal["ping"]


class HandOver(_Base):
    """Pass the turn to agent ``to`` (a profile name, ``default`` for ``[agent]``): it answers
    the conversation now (an agent of the room in this process)."""

    command: Literal["hand_over"]
    to: str = Field(min_length=1, max_length=64)


Command = Annotated[
    Say | Mute | Unmute | Interrupt | Reset | End | Instructions | Status | Ping | HandOver,
    Field(discriminator="command"),
]
_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)
# Who may send each is in the settings; the two lists are one (a test checks the union).
COMMAND_NAMES = tuple(sorted(DEFAULT_COMMAND_ROLES))


class CommandError(ValueError):
    """A command could not be parsed; ``message`` is safe to send back to its sender."""

    def __init__(self, message: str, command_id: str = "") -> None:
        super().__init__(message)
        self.command_id = command_id


def parse_command(payload: bytes, *, max_bytes: int) -> Command:
    """Parse and validate one command.

    Raises:
        CommandError: naming what is wrong and what is allowed.
    """
    if len(payload) > max_bytes:
        raise CommandError(f"command too large ({len(payload)} bytes; at most {max_bytes})")
    try:
        raw: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise CommandError("command is not valid JSON") from None
    if not isinstance(raw, dict):
        raise CommandError('command must be a JSON object like {"command": "ping"}')
    raw_id = raw.get("id")
    command_id = raw_id if isinstance(raw_id, str) else ""
    name = raw.get("command")
    if name not in COMMAND_NAMES:
        raise CommandError(
            f"unknown command {name!r}; allowed: {', '.join(COMMAND_NAMES)}", command_id
        )
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'command'}: {e['msg']}"
            for e in exc.errors()
        )
        raise CommandError(f"invalid {name} command: {problems}", command_id) from None
