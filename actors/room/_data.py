"""Data messages of a room: commands on ``agent.command``, files on ``agent.file``, chat.

Everything a stranger sends is validated here. Admission (rates, open streams, the room's
file budget) has already run in the SDK callback; this module reads what was admitted, always
closing the reader (a reader left open keeps an SDK subscription that filters every native
event of the process), and runs commands in the actor's own task, after checking the sender's
role. Each command and each file gets one answer on ``agent.reply`` (to its sender only).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from anyio.abc import TaskGroup
from livekit import rtc

from actors._metrics import DATA_MESSAGES
from actors._payloads import FileData, Payload
from actors.room._access import AccessPolicy
from actors.room._commands import (
    Command,
    CommandError,
    End,
    HandOver,
    Instructions,
    Interrupt,
    Mute,
    Ping,
    Reset,
    Say,
    Status,
    Unmute,
    parse_command,
)
from actors.room._messages import ChatReceived, CommandReceived, RoomMessage
from actors.room._people import People
from actors.room._quota import Admission
from actors.room._replies import ReplySender
from actors.room._settings import DataSettings
from actors.room._state import ConversationHistory, ParticipantState
from actors.room._team import Seat
from actors.room._voice import VoicePipeline

__all__ = ("CHAT_MAX_CHARS", "TOPIC_CHAT", "TOPIC_COMMAND", "TOPIC_FILE", "DataHost", "DataTopics")

logger = logging.getLogger(__name__)

TOPIC_CHAT = "lk.chat"
TOPIC_COMMAND = "agent.command"
TOPIC_FILE = "agent.file"
CHAT_MAX_CHARS = 4096

Deliver = Callable[[RoomMessage], Awaitable[None]]


class DataHost(Protocol):
    """What commands may do to the room actor that owns this object (in its own task)."""

    voice: VoicePipeline | None
    seat: Seat | None
    conversation_id: str
    people: People
    history: ConversationHistory

    def participant(self, identity: str) -> ParticipantState | None: ...
    def reset_history(self) -> None: ...
    def set_instructions(self, text: str) -> None: ...
    def request_stop(self, reason: str) -> None: ...
    def emit(self, payload: Payload) -> None: ...


class DataTopics:
    """Reads admitted streams and runs commands for one room actor.

    Args:
        settings: the ``[data]`` settings.
        host: the actor, for what commands change.
        replies: where answers are queued.
        admission: the room's quotas (stream and file budgets are given back here).
        deliver: posts a whole command or chat message to the actor's mailbox.
    """

    def __init__(
        self,
        settings: DataSettings,
        host: DataHost,
        replies: ReplySender,
        admission: Admission,
        deliver: Deliver,
    ) -> None:
        self._settings = settings
        self._host = host
        self._replies = replies
        self._admission = admission
        self._deliver = deliver
        self._access = AccessPolicy(settings)

    # -- streams: read what was admitted, and always close the reader -------------------------

    def read(self, tg: TaskGroup, topic: str, identity: str, reader: Any, *, name: str) -> None:
        """Read an admitted stream in a task of ``tg`` (admission bounded how many run)."""
        task = f"{name}:{topic}"
        if topic == TOPIC_FILE:
            tg.start_soon(self.read_file, identity, reader, name=task)
        elif topic == TOPIC_COMMAND:
            tg.start_soon(self.read_command, identity, reader, name=task)
        else:
            tg.start_soon(self.read_chat, identity, reader, name=task)

    async def read_command(self, sender: str, reader: rtc.TextStreamReader) -> None:
        """A command sent as a text stream (its sender is known)."""
        try:
            text = await _read_text(reader, self._settings.command_max_bytes)
        except rtc.StreamError:
            self._fail(TOPIC_COMMAND, sender, "", "command stream aborted")
            return
        finally:
            reader.close()
            self._admission.stream_closed(sender)
        # Over the limit: parse_command names the size and refuses it.
        await self._deliver(CommandReceived(sender, text.encode()))

    async def read_chat(self, sender: str, reader: rtc.TextStreamReader) -> None:
        try:
            text = await _read_text(reader, CHAT_MAX_CHARS)
        except rtc.StreamError:
            DATA_MESSAGES.labels(topic=TOPIC_CHAT, result="aborted").inc()
            return
        finally:
            reader.close()
            self._admission.stream_closed(sender)
        if len(text) > CHAT_MAX_CHARS:
            DATA_MESSAGES.labels(topic=TOPIC_CHAT, result="too_large").inc()
            return
        DATA_MESSAGES.labels(topic=TOPIC_CHAT, result="ok").inc()
        if text.strip():
            await self._deliver(ChatReceived(sender, text.strip()))

    async def read_file(self, sender: str, reader: rtc.ByteStreamReader) -> None:
        """Store one uploaded file, or refuse it with the reason."""
        content = bytearray()
        try:
            refusal = self._check_file(reader.info)
            if refusal is None:
                refusal = await self._read_file(reader, content)
        except rtc.StreamError:
            refusal = "upload aborted before the end"
        finally:
            reader.close()
            self._admission.stream_closed(sender)
        info = reader.info
        if refusal is not None:
            self._admission.file_released(len(content))
            self._fail(TOPIC_FILE, sender, info.stream_id, refusal)
            return
        self._host.emit(
            FileData(
                name=info.name or "upload",
                mime_type=info.mime_type or "application/octet-stream",
                size=len(content),
                sender=sender,
                stream_id=info.stream_id,
                content_b64=base64.b64encode(content).decode("ascii"),
            )
        )
        DATA_MESSAGES.labels(topic=TOPIC_FILE, result="ok").inc()
        self._replies.reply(
            sender,
            {
                "id": info.stream_id,
                "ok": True,
                "error": None,
                "name": info.name,
                "size": len(content),
            },
        )

    def _check_file(self, info: rtc.ByteStreamInfo) -> str | None:
        mime = info.mime_type or "application/octet-stream"
        if not self._settings.mime_allowed(mime):
            return f"file type {mime!r} not accepted; allowed: " + ", ".join(
                self._settings.file_mime_types
            )
        limit = self._settings.file_max_bytes
        if info.size and info.size > limit:
            return f"file too large ({info.size} bytes; at most {limit})"
        return self._admission.file_started()

    async def _read_file(self, reader: rtc.ByteStreamReader, content: bytearray) -> str | None:
        limit = self._settings.file_max_bytes
        async for chunk in reader:
            budget = self._admission.file_bytes(len(chunk))
            if budget is not None:
                return budget
            content += chunk
            if len(content) > limit:
                return f"file too large (over {limit} bytes)"
        return None

    # -- commands: run in the actor's task ----------------------------------------------------

    def refused(self, topic: str, sender: str, item_id: str, reason: str) -> None:
        """Answer something admission refused before it was read."""
        self._replies.reply(sender, {"id": item_id, "ok": False, "error": reason})
        logger.info("data message refused", extra={"topic": topic, "reason": reason[:120]})

    def command(self, sender: str, payload: bytes) -> None:
        """Check, run and answer one command."""
        if not self._settings.commands:
            self._fail(TOPIC_COMMAND, sender, "", "commands are disabled on this agent")
            return
        try:
            cmd = parse_command(payload, max_bytes=self._settings.command_max_bytes)
        except CommandError as exc:
            if self._host.seat is None or self._host.seat.lead:  # one answer per room
                self._fail(TOPIC_COMMAND, sender, exc.command_id, str(exc))
            return
        seat = self._host.seat
        if seat is not None and not _for(cmd, seat):
            return  # another agent of the room answers it
        participant = self._host.participant(sender) if sender else None
        role = self._access.role_of(participant)
        forbidden = self._access.refusal(cmd.command, participant)
        if forbidden is not None:
            DATA_MESSAGES.labels(topic=TOPIC_COMMAND, result="forbidden").inc()
            self._replies.reply(sender, {"id": cmd.id, "ok": False, "error": forbidden})
            logger.info("command refused", extra={"command": cmd.command, "role": role})
            return
        voice = self._host.voice
        extra: dict[str, Any] = {}
        match cmd:
            case Say() | HandOver() if voice is None or (seat is not None and not seat.speaks):
                self._fail(TOPIC_COMMAND, sender, cmd.id, "this agent has no voice")
                return
            case Say(text=text):
                if voice is not None:
                    voice.say(text)
            case HandOver(to=to):
                if seat is not None and not seat.hand_over(to):
                    self._fail(TOPIC_COMMAND, sender, cmd.id, f"no agent {to!r} speaks here")
                    return
            case Mute() | Unmute():
                if voice is not None:
                    voice.muted = isinstance(cmd, Mute)
            case Interrupt():
                if voice is not None:
                    voice.interrupt(reason="command")
            case Reset():
                if voice is not None:
                    voice.interrupt(reason="reset")
                self._host.reset_history()
            case Instructions(text=text):
                self._host.set_instructions(text)
            case Status():
                extra = self._status(sender, role)
            case Ping():
                pass
            case End():
                self._host.request_stop("ended by command")
        DATA_MESSAGES.labels(topic=TOPIC_COMMAND, result="ok").inc()
        self._replies.reply(sender, {"id": cmd.id, "ok": True, "error": None, **extra})

    def _status(self, identity: str, role: str) -> dict[str, Any]:
        """The ``status`` answer: the whole room for an operator, else only the sender's part."""
        voice = self._host.voice
        state = "speaking" if voice is not None and voice.speaking else "listening"
        own = {"state": state, "you": {"identity": identity, "role": role}}
        if not self._access.sees_room(role):
            return own
        return {
            **own,
            "conversation_id": self._host.conversation_id,
            "participants": self._host.people.present(),
            "messages": len(self._host.history.messages),
            "muted": voice is not None and voice.muted,
        }

    def _fail(self, topic: str, sender: str, item_id: str, error: str) -> None:
        DATA_MESSAGES.labels(topic=topic, result="refused").inc()
        logger.info("data message refused", extra={"topic": topic, "reason": error[:120]})
        self._replies.reply(sender, {"id": item_id, "ok": False, "error": error})


def _for(cmd: Command, seat: Seat) -> bool:
    """Whether a command is this agent's to run: the agent's it names, else the room's first
    agent's (``hand_over`` too: it passes the turn to its ``to`` through the team)."""
    return cmd.agent == seat.name if cmd.agent else seat.lead


async def _read_text(reader: rtc.TextStreamReader, limit: int) -> str:
    """The stream's text, or its first ``limit + 1`` characters when it is longer."""
    parts: list[str] = []
    size = 0
    async for chunk in reader:
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return "".join(parts)[: limit + 1]
