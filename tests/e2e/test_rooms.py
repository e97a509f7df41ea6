"""The foundation end to end: a real livekit-server, its signed webhooks, the daemon."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from livekit import api

from actors.persistence import EmbeddedStore
from supervisor import Daemon
from tests.conftest import daemon_config, room_metadata
from tests.harness.livekit_server import LiveKitServer, free_port
from tests.harness.participants import joined
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AGENT = "voice-agent"


async def agent_in_room(lkapi: api.LiveKitAPI, room: str) -> bool:
    resp = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
    return any(p.identity == AGENT for p in resp.participants)


def stored(daemon: Daemon) -> EmbeddedStore:
    return EmbeddedStore(daemon.config.persistence.store_path)


async def test_agent_joins_a_room_created_with_metadata(
    daemon: Daemon, lkapi: api.LiveKitAPI
) -> None:
    await lkapi.room.create_room(
        api.CreateRoomRequest(
            name="e2e-join", metadata=room_metadata(conversation_id="conv-join", user_id="u-1")
        )
    )
    await poll_until(lambda: agent_in_room(lkapi, "e2e-join"), deadline_s=10, what="agent in room")
    assert daemon.registry is not None
    assert "e2e-join" in daemon.registry.rooms
    store = stored(daemon)
    event = await poll_until(
        lambda: [e for e in store.events(["agent_joined"]) if e["room"] == "e2e-join"],
        deadline_s=5,
        what="agent_joined stored",
    )
    assert event[0]["conversation_id"] == "conv-join"
    assert event[0]["data"]["user_id"] == "u-1"


async def test_participants_coming_and_going_are_stored(
    daemon: Daemon, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    await lkapi.room.create_room(
        api.CreateRoomRequest(
            name="e2e-people", metadata=room_metadata(conversation_id="conv-people")
        )
    )
    await poll_until(lambda: agent_in_room(lkapi, "e2e-people"), deadline_s=10, what="agent")
    store = stored(daemon)
    async with joined(livekit_server, "e2e-people", "alice", name="Alice", metadata='{"a":1}'):
        await poll_until(
            lambda: store.participant_events("conv-people"),
            deadline_s=10,
            what="participant_connected stored",
        )
    events = await poll_until(
        lambda: (e := store.participant_events("conv-people")) and len(e) >= 2 and e,
        deadline_s=10,
        what="participant_disconnected stored",
    )
    assert [(e["type"], e["identity"], e["name"]) for e in events] == [
        ("participant_connected", "alice", "Alice"),
        ("participant_disconnected", "alice", "Alice"),
    ]


async def test_deleting_the_room_stops_the_actor_and_stores_the_session(
    daemon: Daemon, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    await lkapi.room.create_room(
        api.CreateRoomRequest(
            name="e2e-end", metadata=room_metadata(conversation_id="conv-end", user_id="u-9")
        )
    )
    await poll_until(lambda: agent_in_room(lkapi, "e2e-end"), deadline_s=10, what="agent")
    async with joined(livekit_server, "e2e-end", "bob"):
        store = stored(daemon)
        await poll_until(lambda: store.participant_events("conv-end"), deadline_s=10, what="bob")
    await lkapi.room.delete_room(api.DeleteRoomRequest(room="e2e-end"))
    assert daemon.registry is not None
    registry = daemon.registry
    await poll_until(lambda: "e2e-end" not in registry.rooms, deadline_s=10, what="actor stopped")
    sessions = await poll_until(
        lambda: [s for s in store.sessions() if s["room"] == "e2e-end"],
        deadline_s=5,
        what="session stored",
    )
    (session,) = sessions
    assert session["conversation_id"] == "conv-end"
    assert session["user_id"] == "u-9"
    assert session["room"] == "e2e-end"
    assert [p["identity"] for p in session["participants"]] == ["bob"]
    assert session["participants"][0]["left_at"] is not None
    assert 0 < session["duration_s"] < 60
    assert session["ended_at"] >= session["started_at"]


async def test_reconcile_joins_rooms_whose_webhook_was_lost(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, tmp_path: Path
) -> None:
    # This daemon listens where the server sends no webhooks: only reconcile can find rooms.
    config = daemon_config(
        livekit_server, free_port(), tmp_path / "data", supervisor={"reconcile_interval_s": 0.5}
    )
    daemon = Daemon(config)
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        await lkapi.room.create_room(api.CreateRoomRequest(name="e2e-lost", metadata="not json"))
        await poll_until(lambda: agent_in_room(lkapi, "e2e-lost"), deadline_s=10, what="agent")
        assert daemon.registry is not None
        registry = daemon.registry
        await poll_until(lambda: "e2e-lost" in registry.joined, deadline_s=10, what="running")
        # Invalid metadata is logged and the actor runs with a conversation id of its own.
        store = EmbeddedStore(config.persistence.store_path)
        joined_events = await poll_until(
            lambda: [e for e in store.events(["agent_joined"]) if e["room"] == "e2e-lost"],
            deadline_s=5,
            what="agent_joined",
        )
        assert joined_events[0]["conversation_id"].startswith("conv_")
        await lkapi.room.delete_room(api.DeleteRoomRequest(room="e2e-lost"))
        await poll_until(lambda: not registry.rooms, deadline_s=10, what="actor gone")
        daemon.request_stop()


async def test_rooms_outside_the_configured_patterns_are_left_alone(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> None:
    config = daemon_config(
        livekit_server, webhook_port, tmp_path / "data", agent={"rooms": ["support-*"]}
    )
    daemon = Daemon(config)
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        await lkapi.room.create_room(api.CreateRoomRequest(name="sales-1"))
        await lkapi.room.create_room(api.CreateRoomRequest(name="support-1"))
        await poll_until(lambda: agent_in_room(lkapi, "support-1"), deadline_s=10, what="agent")
        assert daemon.registry is not None
        assert daemon.registry.rooms == {"support-1"}
        assert daemon.supervisor is not None
        await daemon.supervisor.reconcile()
        assert daemon.registry.rooms == {"support-1"}
        assert not await agent_in_room(lkapi, "sales-1")
        daemon.request_stop()


async def test_shutdown_saves_every_session(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> None:
    config = daemon_config(livekit_server, webhook_port, tmp_path / "data")
    daemon = Daemon(config)
    names = [f"e2e-drain-{i}" for i in range(3)]
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        for name in names:
            await lkapi.room.create_room(
                api.CreateRoomRequest(
                    name=name, metadata=json.dumps({"conversation_id": f"c-{name}"})
                )
            )
        assert daemon.registry is not None
        registry = daemon.registry
        await poll_until(lambda: registry.joined == set(names), deadline_s=15, what="3 rooms")
        daemon.request_stop()
    sessions = [
        s for s in EmbeddedStore(config.persistence.store_path).sessions() if s["room"] in names
    ]
    assert sorted(s["room"] for s in sessions) == names
    assert {s["end_reason"] for s in sessions} == {"daemon shutting down"}
