"""Rooms left without their agent become the contract's ``error`` events: unit tests through the
registry with scripted runners, and e2e through the daemon (a real livekit-server, the
reference backend over HTTP, the embedded store)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import TaskStatus
from livekit import api

from actors import ActorCrashed, ActorStartError, Event
from actors.persistence import EmbeddedStore
from actors.persistence._contract import parse_batch
from actors.room import RoomSpec
from supervisor import Daemon, RoomRegistry, SupervisorSettings
from supervisor._incidents import RoomIncidents
from tests.conftest import daemon_config
from tests.fakes.backend import FaultyBackend, running_backend
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

FAST = SupervisorSettings(
    restart_backoff_initial_s=0.001,
    restart_backoff_max_s=0.01,
    max_restarts=2,
    restart_window_s=60,
)


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


class Handle:
    def __init__(self) -> None:
        self.stopped = anyio.Event()

    def request_stop(self, reason: str) -> None:
        self.stopped.set()


class Runner:
    """Fails as scripted: before joining (``start``) or after (``run``; ``run-then-start``:
    after joining the first time, then before), else runs on."""

    def __init__(self, spec: RoomSpec, fail: str) -> None:
        self.spec = spec
        self.conversation_id = ""
        self.failure = ""
        self._fail = fail

    async def run(self, *, task_status: TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
        if self._fail == "start" or (self._fail == "run-then-start" and self.spec.attempt > 0):
            self.failure = "TimeoutError"  # what a host reports for a join that timed out
            raise ActorStartError("room actor could not start on its host (TimeoutError)")
        self.conversation_id = "conv-7"
        handle = Handle()
        task_status.started(handle)
        if self._fail in ("run", "run-then-start"):
            raise ActorCrashed("room actor failed on its host (RuntimeError)")
        await handle.stopped.wait()


async def _given_up(fail: str, agent: str = "") -> list[Event]:
    sink = Sink()
    incidents = RoomIncidents(sink)
    registry = RoomRegistry(
        FAST,
        lambda room, agent, attempt: RoomSpec(room, "ws://x", "t", attempt, agent=agent),
        lambda spec: incidents.watch(Runner(spec, fail)),
        on_give_up=incidents.report,
    )
    async with anyio.create_task_group() as tg:
        await tg.start(registry.run)
        registry.ensure("room-1", sid="RM_1", agent=agent)
        await poll_until(lambda: not registry.rooms, deadline_s=5, what="room given up")
        tg.cancel_scope.cancel()
    return sink.events


async def test_a_room_that_never_joins_sends_each_failure_then_the_give_up() -> None:
    events = await _given_up("start")
    data = [e.data for e in events]
    assert [d["code"] for d in data] == ["room_start_failed"] * 3 + ["room_given_up"]
    assert [d["attempt"] for d in data] == [0, 1, 2, 2]
    assert {d["error_type"] for d in data} == {"TimeoutError"}
    assert data[-1]["restarts"] == FAST.max_restarts and data[-1]["room_sid"] == "RM_1"
    # No conversation yet: the room's name stands in for it.
    assert {(e.room, e.conversation_id) for e in events} == {("room-1", "room-1")}
    # What the reference backend accepts (the contract's rules, from the payload's definition).
    batch = json.dumps({"events": [e.to_json() for e in events]}).encode()
    assert [e.id for e in parse_batch(batch)] == [e.id for e in events]


async def test_a_room_that_crashes_after_joining_keeps_its_conversation() -> None:
    events = await _given_up("run")
    assert [e.data["code"] for e in events] == ["room_crashed"] * 3 + ["room_given_up"]
    assert {e.conversation_id for e in events} == {"conv-7"}
    assert events[-1].data["error_type"] == "ActorCrashed"  # the runner named no cause


async def test_a_restart_that_cannot_join_keeps_the_conversation_of_the_first_run() -> None:
    events = await _given_up("run-then-start")
    codes = [e.data["code"] for e in events]
    assert codes == ["room_crashed"] + ["room_start_failed"] * 2 + ["room_given_up"]
    assert {e.conversation_id for e in events} == {"conv-7"}


async def test_each_agent_of_a_room_has_its_own_events() -> None:
    events = await _given_up("start", agent="sales")
    assert {e.data["agent"] for e in events} == {"sales"}
    assert events[-1].data["code"] == "room_given_up" and events[-1].data["attempt"] == 2


async def test_a_room_stopped_or_ending_cleanly_sends_nothing() -> None:
    sink = Sink()
    incidents = RoomIncidents(sink)
    registry = RoomRegistry(
        FAST,
        lambda room, agent, attempt: RoomSpec(room, "ws://x", "t", attempt, agent=agent),
        lambda spec: incidents.watch(Runner(spec, "")),
        on_give_up=incidents.report,
    )
    async with anyio.create_task_group() as tg:
        await tg.start(registry.run)
        registry.ensure("room-1")
        await poll_until(lambda: registry.joined, deadline_s=5, what="joined")
        handle = registry.handle("room-1")
        assert handle is not None and getattr(handle, "conversation_id", None) == "conv-7"
        registry.stop("room-1", "room finished")
        await poll_until(lambda: not registry.rooms, deadline_s=5, what="room ended")
        tg.cancel_scope.cancel()
    assert sink.events == []


# -- e2e: the daemon, a real server, a room whose agent cannot join ---------------------------


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[FaultyBackend]:
    async with running_backend(tmp_path / "backend.sqlite3") as served:
        yield served


class TokenlessDaemon(Daemon):
    """Hands its room actors a token the server refuses: every join fails (HTTP 401)."""

    def _room_spec(self, *args: Any, **kwargs: Any) -> RoomSpec:
        return dataclasses.replace(super()._room_spec(*args, **kwargs), token="not-a-token")


async def _run_doomed_room(
    livekit_server: LiveKitServer,
    lkapi: api.LiveKitAPI,
    webhook_port: int,
    data_dir: Path,
    stored: Any,
    **persistence: Any,
) -> list[dict[str, Any]]:
    config = daemon_config(
        livekit_server,
        webhook_port,
        data_dir,
        supervisor={"max_restarts": 1, "restart_backoff_initial_s": 0.05},
        persistence={"flush_interval_ms": 5, **persistence},
    )
    daemon = TokenlessDaemon(config)
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        await lkapi.room.create_room(
            api.CreateRoomRequest(name="doomed", metadata=json.dumps({"conversation_id": "c-d"}))
        )

        def errors() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = stored()
            return found if any(e["data"]["code"] == "room_given_up" for e in found) else []

        events: list[dict[str, Any]] = await poll_until(
            errors, deadline_s=30, what="the give-up event stored"
        )
        daemon.request_stop()
    return events


@pytest.mark.e2e
async def test_the_backend_gets_the_error_events_of_a_room_given_up(
    livekit_server: LiveKitServer,
    lkapi: api.LiveKitAPI,
    webhook_port: int,
    backend: FaultyBackend,
    tmp_path: Path,
) -> None:
    events = await _run_doomed_room(
        livekit_server,
        lkapi,
        webhook_port,
        tmp_path / "data",
        lambda: backend.store.events(["error"]),
        backend_url=backend.url,
    )
    codes = [e["data"]["code"] for e in events]
    assert codes == ["room_start_failed", "room_start_failed", "room_given_up"]
    assert {e["room"] for e in events} == {"doomed"}
    assert all(
        e["data"]["room_sid"] is None or e["data"]["room_sid"].startswith("RM_") for e in events
    )
    assert events[-1]["data"]["restarts"] == 1
    assert events[0]["data"]["error_type"]  # the host's reason, e.g. TimeoutError


@pytest.mark.e2e
async def test_without_a_backend_the_error_events_go_to_the_embedded_store(
    livekit_server: LiveKitServer,
    lkapi: api.LiveKitAPI,
    webhook_port: int,
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"

    def stored() -> list[dict[str, Any]]:
        store = EmbeddedStore(data_dir / "store.sqlite3")
        try:
            return store.events(["error"])
        finally:
            store.close()

    events = await _run_doomed_room(livekit_server, lkapi, webhook_port, data_dir, stored)
    assert [e["data"]["code"] for e in events][-1] == "room_given_up"
