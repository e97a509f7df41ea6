"""Late webhooks at the daemon subprocess with a real server, signed as LiveKit signs them: a
``room_finished`` of an earlier room with the same name must not end the current room's agent,
and a ``room_started`` of a room that has ended must not create it again.

LiveKit retries a webhook it could not deliver, and a room created again under a finished
room's name gets a new sid; the registry tells the two rooms apart by sid.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from livekit import api
from prometheus_client.parser import text_string_to_metric_families

from actors.persistence import EmbeddedStore
from tests.faults.daemon import DaemonProcess, config_toml, running_daemon
from tests.faults.test_webhooks import agent_in, webhook
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

ROOM = "fault-stale-end"


def sessions(data_dir: Path) -> list[dict[str, object]]:
    store = EmbeddedStore(data_dir / "store.sqlite3")
    try:
        return [s for s in store.sessions() if s["room"] == ROOM]
    finally:
        store.close()


async def metric(client: httpx.AsyncClient, name: str) -> float:
    metrics = (await client.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == name
    )


async def stale_finishes(client: httpx.AsyncClient) -> float:
    return await metric(client, "voice_supervisor_stale_room_finished_total")


async def joined(daemon: DaemonProcess, times: int) -> None:
    await daemon.wait_line(
        lambda _line: [m.get("room") for m in daemon.messages("room joined")].count(ROOM) >= times,
        deadline_s=30,
        what=f"room joined {times} time(s)",
    )


async def test_a_retried_room_finished_of_an_earlier_room_does_not_stop_the_current_one(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> None:
    config = config_toml(livekit_server, webhook_port, tmp_path / "data", workers=1)
    async with running_daemon(config, tmp_path, webhook_port) as daemon:
        first = await lkapi.room.create_room(api.CreateRoomRequest(name=ROOM))
        await joined(daemon, 1)
        # The first room ends (LiveKit's own room_finished reaches the daemon)...
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=ROOM))
        await poll_until(
            lambda: sessions(daemon.data_dir), deadline_s=15, what="first session saved"
        )
        # ...and a new room is created under the same name: a new sid, and an agent again.
        second = await lkapi.room.create_room(api.CreateRoomRequest(name=ROOM))
        assert second.sid != first.sid
        await joined(daemon, 2)
        assert await agent_in(lkapi, ROOM)
        async with httpx.AsyncClient(base_url=daemon.url) as client:
            before = await stale_finishes(client)
            # The first room's room_finished again, signed with the server's key (a retry
            # under an id the de-duplication no longer remembers).
            body, headers = webhook(livekit_server, "room_finished", "EV_stale_retry", first)
            assert (await client.post("/webhook", content=body, headers=headers)).status_code == 200

            async def counted() -> bool:
                return await stale_finishes(client) == before + 1

            await poll_until(counted, deadline_s=10, what="the stale room_finished ignored")
            assert await agent_in(lkapi, ROOM)
            assert len(sessions(daemon.data_dir)) == 1
            # The current room's own room_finished does end it.
            body, headers = webhook(livekit_server, "room_finished", "EV_current_end", second)
            assert (await client.post("/webhook", content=body, headers=headers)).status_code == 200
        await poll_until(
            lambda: len(sessions(daemon.data_dir)) == 2, deadline_s=15, what="second session"
        )
        daemon.send_signal(signal.SIGTERM)
        assert await daemon.wait_exit(deadline_s=30) == 0
    reasons = [s["end_reason"] for s in sessions(daemon.data_dir)]
    assert reasons[-1] == "room finished", reasons


async def test_a_late_room_started_of_an_ended_room_does_not_create_it_again(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> None:
    config = config_toml(livekit_server, webhook_port, tmp_path / "data", workers=0)
    gone = api.Room(name="fault-late-start", sid="RM_ended_meanwhile")
    async with running_daemon(config, tmp_path, webhook_port) as daemon:
        async with httpx.AsyncClient(base_url=daemon.url) as client:
            runs = await metric(client, "voice_supervisor_reconcile_total")
            # LiveKit kept retrying it for two minutes while the daemon was down.
            late = int(time.time()) - 120
            body, headers = webhook(
                livekit_server, "room_started", "EV_late_start", gone, created_at=late
            )
            assert (await client.post("/webhook", content=body, headers=headers)).status_code == 200
            await daemon.wait_line(
                lambda line: line.get("msg") == "late webhook; checking the room list first",
                deadline_s=10,
                what="the late event sent to a listing",
            )

            async def listed_since() -> bool:
                return await metric(client, "voice_supervisor_reconcile_total") > runs

            await poll_until(listed_since, deadline_s=10, what="a room listing after it")
        listed = (await lkapi.room.list_rooms(api.ListRoomsRequest())).rooms
        assert gone.name not in {r.name for r in listed}
        assert not [m for m in daemon.messages("room joined") if m.get("room") == gone.name]
        daemon.send_signal(signal.SIGTERM)
        assert await daemon.wait_exit(deadline_s=30) == 0
