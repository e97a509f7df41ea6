"""The supervisor's decisions with a real registry, scripted actors and a scripted room list:
rooms are told apart by sid, so a room created again under a finished room's name is joined,
and late events of the finished room neither rejoin it nor stop the new room's agent."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import pytest
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream
from livekit import api

from actors.room import RoomHandle, RoomSpec
from supervisor import AgentSettings, RoomRegistry, SupervisorSettings
from supervisor._messages import ParticipantJoined, RoomFinished, RoomStarted, SupervisorMessage
from supervisor._supervisor import Supervisor


class Actor:
    """Joins at once and runs until asked to stop; records its starts and stops."""

    def __init__(self, spec: RoomSpec, log: list[tuple[str, str]]) -> None:
        self.spec = spec
        self._log = log

    async def run(self, *, task_status: TaskStatus[RoomHandle] = anyio.TASK_STATUS_IGNORED) -> None:
        send, inbox = anyio.create_memory_object_stream[object](8)
        stop = anyio.Event()
        with send, inbox:
            self._log.append(("start", self.spec.room))
            task_status.started(RoomHandle(self.spec.room, "c", send, stop))
            await stop.wait()
            self._log.append(("stop", self.spec.room))


@dataclass
class RoomList:
    """What ``list_rooms`` answers: the room service as the supervisor uses it."""

    rooms: list[api.Room] = field(default_factory=list)
    calls: int = 0

    async def list_rooms(self, _request: api.ListRoomsRequest) -> api.ListRoomsResponse:
        self.calls += 1
        return api.ListRoomsResponse(rooms=self.rooms)


@dataclass
class Harness:
    supervisor: Supervisor
    registry: RoomRegistry
    mailbox: MemoryObjectSendStream[SupervisorMessage]
    listing: RoomList
    log: list[tuple[str, str]]

    async def send(self, *messages: SupervisorMessage) -> None:
        for message in messages:
            await self.mailbox.send(message)
        await anyio.wait_all_tasks_blocked()


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    log: list[tuple[str, str]] = []
    settings = SupervisorSettings(reconcile_interval_s=3600, restart_backoff_initial_s=0.001)
    registry = RoomRegistry(
        settings,
        lambda room, agent, n: RoomSpec(room, "ws://x", "t", n, agent),
        lambda s: Actor(s, log),
    )
    send, receive = anyio.create_memory_object_stream[SupervisorMessage](16)
    listing = RoomList()
    lkapi = cast(api.LiveKitAPI, _Api(listing))
    supervisor = Supervisor(settings, AgentSettings(), registry, receive, lkapi)
    async with anyio.create_task_group() as tg:
        await tg.start(registry.run)
        await tg.start(supervisor.run)
        with send:
            yield Harness(supervisor, registry, send, listing, log)
        tg.cancel_scope.cancel()


@dataclass
class _Api:
    room: Any


async def settle(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.wait_all_tasks_blocked()
            await anyio.lowlevel.checkpoint()


async def test_a_retried_room_finished_of_an_earlier_room_leaves_the_new_one_alone(
    harness: Harness,
) -> None:
    registry = harness.registry
    await harness.send(RoomStarted("r", "RM_a", 1.0))
    await settle(lambda: registry.joined == {"r"})
    await harness.send(RoomFinished("r", "RM_a"))
    await settle(lambda: "r" not in registry.rooms)
    # The room is created again under the same name: a new sid, and it gets an agent.
    await harness.send(RoomStarted("r", "RM_b", 2.0))
    await settle(lambda: registry.joined == {"r"} and registry.sid("r") == "RM_b")
    # LiveKit retries the first room's room_finished (and a late participant_joined of it).
    await harness.send(RoomFinished("r", "RM_a"), ParticipantJoined("r", "RM_a", "ann", 3.0))
    assert registry.joined == {"r"} and registry.sid("r") == "RM_b"
    assert harness.log == [("start", "r"), ("stop", "r"), ("start", "r")]
    await harness.send(RoomFinished("r", "RM_b"))
    await settle(lambda: "r" not in registry.rooms)


async def test_the_new_rooms_start_before_the_old_rooms_end_still_gets_an_agent(
    harness: Harness,
) -> None:
    registry = harness.registry
    await harness.send(RoomStarted("r", "RM_a", 1.0))
    await settle(lambda: registry.joined == {"r"})
    await harness.send(RoomStarted("r", "RM_b", 2.0), RoomFinished("r", "RM_a"))
    await settle(lambda: registry.joined == {"r"} and registry.sid("r") == "RM_b")
    assert harness.log == [("start", "r"), ("stop", "r"), ("start", "r")]


async def test_reconcile_never_rejoins_a_finished_room_but_joins_its_successor(
    harness: Harness,
) -> None:
    registry = harness.registry
    await harness.send(RoomStarted("r", "RM_a", 1.0), RoomFinished("r", "RM_a"))
    await settle(lambda: "r" not in registry.rooms)
    # The server still lists the finished room (the webhook came first): not joined again.
    harness.listing.rooms = [api.Room(name="r", sid="RM_a")]
    await harness.supervisor.reconcile()
    await anyio.wait_all_tasks_blocked()
    assert "r" not in registry.rooms
    harness.listing.rooms = [api.Room(name="r", sid="RM_b")]
    await harness.supervisor.reconcile()
    await settle(lambda: registry.joined == {"r"} and registry.sid("r") == "RM_b")
    # A late room_started of the finished room does not touch the new room's agent either.
    await harness.send(RoomStarted("r", "RM_a", 1.0), RoomFinished("r", "RM_a"))
    assert registry.joined == {"r"} and registry.sid("r") == "RM_b"


async def test_a_room_finished_without_a_sid_stops_the_room_by_name(harness: Harness) -> None:
    registry = harness.registry
    await harness.send(RoomStarted("r", "RM_a", 1.0))
    await settle(lambda: registry.joined == {"r"})
    await harness.send(RoomFinished("r", ""))
    await settle(lambda: "r" not in registry.rooms)


async def test_a_late_start_event_is_checked_against_the_room_list_before_joining(
    harness: Harness,
) -> None:
    registry, listing = harness.registry, harness.listing
    await settle(lambda: listing.calls == 1)  # the start-up reconcile
    late = time.time() - 60  # LiveKit retried it for a minute while the daemon was away
    # The room ended meanwhile: joining would create it again, so nothing starts.
    await harness.send(RoomStarted("gone", "RM_g", 1.0, created_at=late))
    await settle(lambda: listing.calls == 2)
    await anyio.wait_all_tasks_blocked()
    assert "gone" not in registry.rooms and harness.log == []
    # A late event of a room that is still there: the listing finds it and it is joined.
    listing.rooms = [api.Room(name="here", sid="RM_h")]
    await harness.send(ParticipantJoined("here", "RM_h", "ann", 2.0, created_at=late))
    await settle(lambda: registry.joined == {"here"} and registry.sid("here") == "RM_h")
    # A fresh event is joined at once, without a listing.
    await harness.send(RoomStarted("new", "RM_n", 3.0, created_at=time.time()))
    await settle(lambda: registry.joined == {"here", "new"})
    assert listing.calls == 3
