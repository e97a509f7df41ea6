"""Data messages of a room: commands on ``agent.command``, files on ``agent.file``.

Everything a stranger sends is validated here. Each command and each file gets one answer
on ``agent.reply`` (to its sender only): ``{"id", "ok", "error", ...}``. Malformed, oversized or
unknown input gets a clear error, a metric, and the room keeps running.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any, Protocol

from livekit import rtc

from actors._events import EventType
from actors._metrics import DATA_MESSAGES
from actors.room._commands import (
    CommandError,
    End,
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
from actors.room._settings import DataSettings
from actors.room._voice import VoicePipeline

__all__ = ("TOPIC_COMMAND", "TOPIC_FILE", "TOPIC_REPLY", "DataHost", "DataTopics")

logger = logging.getLogger(__name__)

TOPIC_COMMAND = "agent.command"
TOPIC_FILE = "agent.file"
TOPIC_REPLY = "agent.reply"


class DataHost(Protocol):
    """What commands may do to the room actor that owns this object."""

    voice: VoicePipeline | None

    def reset_history(self) -> None: ...
    def request_stop(self, reason: str) -> None: ...
    def status(self) -> dict[str, Any]: ...
    def emit(self, type_: EventType, data: dict[str, Any]) -> None: ...


class DataTopics:
    def __init__(self, room: rtc.Room, settings: DataSettings, host: DataHost) -> None:
        self._room = room
        self._settings = settings
        self._host = host

    async def command_stream(self, sender: str, reader: rtc.TextStreamReader) -> None:
        """A command sent as a text stream (its sender is known)."""
        limit = self._settings.command_max_bytes
        text = ""
        try:
            async for chunk in reader:
                text += chunk
                if len(text) > limit:
                    await reader.aclose()
                    break
        except rtc.StreamError:
            await self._fail(TOPIC_COMMAND, sender, "", "command stream aborted")
            return
        await self.command(sender, text.encode())

    async def command(self, sender: str, payload: bytes) -> None:
        """Run one command and answer it."""
        if not self._settings.commands:
            await self._fail(TOPIC_COMMAND, sender, "", "commands are disabled on this agent")
            return
        try:
            cmd = parse_command(payload, max_bytes=self._settings.command_max_bytes)
        except CommandError as exc:
            await self._fail(TOPIC_COMMAND, sender, exc.command_id, str(exc))
            return
        voice = self._host.voice
        extra: dict[str, Any] = {}
        match cmd:
            case Say(text=text):
                if voice is None:
                    await self._fail(TOPIC_COMMAND, sender, cmd.id, "this agent has no voice")
                    return
                voice.say(text)
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
                if voice is not None:
                    voice.instructions = text
            case Status():
                extra = self._host.status()
            case Ping():
                pass
            case End():
                await self._reply(sender, {"id": cmd.id, "ok": True, "error": None})
                DATA_MESSAGES.labels(topic=TOPIC_COMMAND, result="ok").inc()
                self._host.request_stop("ended by command")
                return
        DATA_MESSAGES.labels(topic=TOPIC_COMMAND, result="ok").inc()
        await self._reply(sender, {"id": cmd.id, "ok": True, "error": None, **extra})

    async def receive_file(self, sender: str, reader: rtc.ByteStreamReader) -> None:
        """Store one uploaded file, or refuse it with the reason."""
        info = reader.info
        limit = self._settings.file_max_bytes
        mime = info.mime_type or "application/octet-stream"
        if not self._settings.mime_allowed(mime):
            await self._refuse_stream(
                reader,
                sender,
                info.stream_id,
                f"file type {mime!r} not accepted; allowed: "
                + ", ".join(self._settings.file_mime_types),
            )
            return
        if info.size and info.size > limit:
            await self._refuse_stream(
                reader,
                sender,
                info.stream_id,
                f"file too large ({info.size} bytes; at most {limit})",
            )
            return
        content = bytearray()
        try:
            async for chunk in reader:
                content += chunk
                if len(content) > limit:
                    await self._refuse_stream(
                        reader, sender, info.stream_id, f"file too large (over {limit} bytes)"
                    )
                    return
        except rtc.StreamError:
            await self._fail(TOPIC_FILE, sender, info.stream_id, "upload aborted before the end")
            return
        self._host.emit(
            EventType.FILE,
            {
                "name": info.name or "upload",
                "mime_type": mime,
                "size": len(content),
                "sender": sender,
                "stream_id": info.stream_id,
                "content_b64": base64.b64encode(bytes(content)).decode("ascii"),
            },
        )
        DATA_MESSAGES.labels(topic=TOPIC_FILE, result="ok").inc()
        await self._reply(
            sender,
            {
                "id": info.stream_id,
                "ok": True,
                "error": None,
                "name": info.name,
                "size": len(content),
            },
        )

    async def _refuse_stream(
        self, reader: rtc.ByteStreamReader, sender: str, stream_id: str, reason: str
    ) -> None:
        # Stop reading at once; closing releases the SDK's per-stream queue.
        await reader.aclose()
        await self._fail(TOPIC_FILE, sender, stream_id, reason)

    async def _fail(self, topic: str, sender: str, item_id: str, error: str) -> None:
        DATA_MESSAGES.labels(topic=topic, result="refused").inc()
        logger.info("data message refused", extra={"topic": topic, "reason": error[:120]})
        await self._reply(sender, {"id": item_id, "ok": False, "error": error})

    async def _reply(self, sender: str, payload: dict[str, Any]) -> None:
        try:
            await self._room.local_participant.publish_data(
                json.dumps(payload),
                reliable=True,
                topic=TOPIC_REPLY,
                destination_identities=[sender],
            )
        except Exception as exc:  # the sender may have left; nothing else to do
            logger.warning("could not send a data reply", extra={"error": type(exc).__name__})
