"""Commands on agent.command and files on agent.file, through a real room."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from livekit import api, rtc

from tests.e2e.conftest import VoiceRig, start_room
from tests.harness.livekit_server import LiveKitServer
from tests.harness.participants import joined
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.anyio]


class Replies:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.changed = anyio.Event()

    def add(self, payload: dict[str, Any]) -> None:
        self.items.append(payload)
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_for(self, item_id: str) -> dict[str, Any]:
        with anyio.fail_after(10):
            while True:
                for item in self.items:
                    if item.get("id") == item_id:
                        return item
                await self.changed.wait()


OPERATOR = {"agent.role": "operator"}


@asynccontextmanager
async def sender(
    rig: VoiceRig,
    server: LiveKitServer,
    room: str,
    identity: str = "sender",
    *,
    attributes: dict[str, str] | None = None,
    may_set_own_attributes: bool = False,
) -> AsyncIterator[tuple[rtc.Room, Replies]]:
    """A participant of ``room`` (an operator unless ``attributes`` say otherwise) that collects
    the agent's replies, once the agent has seen it join (a role is known from then on)."""
    replies = Replies()
    async with joined(
        server,
        room,
        identity,
        attributes=OPERATOR if attributes is None else attributes,
        may_set_own_attributes=may_set_own_attributes,
    ) as lk_room:

        @lk_room.on("data_received")
        def _on_data(packet: rtc.DataPacket) -> None:
            if packet.topic == "agent.reply":
                replies.add(json.loads(packet.data))

        await poll_until(
            lambda: any(
                e["room"] == room and e["data"]["identity"] == identity
                for e in rig.store.events(["participant_connected"])
            ),
            deadline_s=10,
            what="the agent sees the participant",
        )
        yield lk_room, replies


async def send(room: rtc.Room, payload: dict[str, Any] | bytes) -> None:
    """A command as a text stream on agent.command (the agent knows who sent it)."""
    text = payload.decode(errors="replace") if isinstance(payload, bytes) else json.dumps(payload)
    await room.local_participant.send_text(text, topic="agent.command")


async def send_packet(room: rtc.Room, payload: dict[str, Any] | bytes) -> None:
    """A command as a data packet on agent.command (answered to everyone)."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    await room.local_participant.publish_data(data, reliable=True, topic="agent.command")


async def test_commands_are_answered_and_bad_ones_are_refused_clearly(
    rig: VoiceRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    await start_room(lkapi, rig, "d-cmd")
    async with sender(rig, livekit_server, "d-cmd") as (room, replies):
        await send(room, {"id": "p1", "command": "ping"})
        assert await replies.wait_for("p1") == {"id": "p1", "ok": True, "error": None}
        await send(room, {"id": "s1", "command": "status"})
        status = await replies.wait_for("s1")
        assert status["ok"] and status["conversation_id"] == "c-d-cmd"
        assert "sender" in status["participants"]
        await send_packet(room, {"id": "p2", "command": "ping"})
        assert await replies.wait_for("p2") == {"id": "p2", "ok": True, "error": None}
        await send(room, {"id": "u1", "command": "dance"})
        unknown = await replies.wait_for("u1")
        assert not unknown["ok"] and "unknown command 'dance'" in unknown["error"]
        assert "say" in unknown["error"]
        await send(room, {"id": "b1", "command": "say"})
        bad = await replies.wait_for("b1")
        assert not bad["ok"] and "invalid say command: text: Field required" == bad["error"]
        await send_packet(room, b"\xff not json")
        await send(room, {"id": "y1", "command": "say", "text": "Hello from a command."})
        said = await replies.wait_for("y1")
        assert said["ok"]
        assert not any(r.get("ok") for r in replies.items if r.get("id") == "")
        malformed = [r for r in replies.items if r.get("error") == "command is not valid JSON"]
        assert len(malformed) == 1
        await poll_until(
            lambda: any(
                m["content"] == "Hello from a command."
                for m in rig.store.recent_messages("c-d-cmd", 20)
            ),
            deadline_s=10,
            what="say recorded as an assistant turn",
        )
        await send(room, {"id": "e1", "command": "end"})
        assert (await replies.wait_for("e1"))["ok"]
    registry = rig.daemon.registry
    assert registry is not None
    await poll_until(lambda: "d-cmd" not in registry.joined, deadline_s=10, what="actor ended")
    # The session is committed by the persistence actor a moment after the actor ends.
    sessions = await poll_until(
        lambda: [s for s in rig.store.sessions() if s["room"] == "d-cmd"],
        deadline_s=5,
        what="session stored",
    )
    assert sessions[0]["end_reason"] == "ended by command"


async def test_files_are_stored_or_refused_with_the_reason(
    rig: VoiceRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    await start_room(lkapi, rig, "d-file")
    async with sender(rig, livekit_server, "d-file") as (room, replies):
        lp = room.local_participant
        info = await lp.send_bytes(
            b"hello file", name="notes.txt", mime_type="text/plain", topic="agent.file"
        )
        accepted = await replies.wait_for(info.stream_id)
        assert accepted == {
            "id": info.stream_id,
            "ok": True,
            "error": None,
            "name": "notes.txt",
            "size": 10,
        }
        bad_type = await lp.send_bytes(
            b"MZ\x90\x00", name="x.exe", mime_type="application/x-msdownload", topic="agent.file"
        )
        refused = await replies.wait_for(bad_type.stream_id)
        assert (
            not refused["ok"]
            and "file type 'application/x-msdownload' not accepted" in refused["error"]
        )
        too_big = await lp.send_bytes(
            b"x" * (5 * 1024 * 1024 + 1), name="big.txt", mime_type="text/plain", topic="agent.file"
        )
        refused_big = await replies.wait_for(too_big.stream_id)
        assert not refused_big["ok"] and "file too large" in refused_big["error"]
        await send(room, {"id": "after", "command": "ping"})
        assert (await replies.wait_for("after"))["ok"]  # the room kept running
    files = await poll_until(lambda: rig.store.events(["file"]), deadline_s=5, what="file event")
    assert [(f["data"]["name"], f["data"]["size"], f["data"]["sender"]) for f in files] == [
        ("notes.txt", 10, "sender")
    ]
    assert rig.store.file_content(files[0]["id"]) == b"hello file"
