"""Forged, replayed and flooding webhooks at the daemon subprocess, with a live room in it.

A forged ``room_finished`` must not end a conversation; LiveKit's own (signed with the server's
key) does. A flood of forged requests and replays is refused or absorbed without touching the
running room, and the daemon stays healthy and ready.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import signal
from pathlib import Path

import anyio
import httpx
import pytest
from livekit import api
from prometheus_client.parser import text_string_to_metric_families

from actors.persistence import EmbeddedStore
from tests.faults.daemon import config_toml, running_daemon
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.faults]

AGENT = "voice-agent"


async def agent_in(lkapi: api.LiveKitAPI, room: str) -> bool:
    resp = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
    return any(p.identity == AGENT for p in resp.participants)


def webhook(
    server: LiveKitServer,
    kind: str,
    event_id: str,
    room: api.Room,
    *,
    secret: str | None = None,
    ttl_s: float = 300,
    created_at: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A webhook as the server would send it, signed with ``secret`` (default: the server's);
    ``created_at`` is its ``createdAt`` (unix seconds, a string as protobuf JSON writes it)."""
    event: dict[str, object] = {
        "event": kind,
        "id": event_id,
        "room": {"name": room.name, "sid": room.sid},
    }
    if created_at is not None:
        event["createdAt"] = str(created_at)
    body = json.dumps(event).encode()
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    token = (
        api.AccessToken(server.api_key, secret or server.api_secret)
        .with_sha256(sha)
        .with_ttl(datetime.timedelta(seconds=ttl_s))
        .to_jwt()
    )
    return body, {"Authorization": token, "Content-Type": "application/webhook+json"}


def counter(metrics: str, result: str) -> float:
    """``voice_supervisor_webhooks_total`` for ``result``, summed over any other labels."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "voice_supervisor_webhooks_total"
        and sample.labels.get("result") == result
    )


async def test_a_forged_room_finished_does_not_end_the_conversation(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> None:
    config = config_toml(livekit_server, webhook_port, tmp_path / "data")
    async with running_daemon(config, tmp_path, webhook_port) as daemon:
        room = await lkapi.room.create_room(
            api.CreateRoomRequest(name="fault-wh-end", metadata='{"conversation_id": "c-wh"}')
        )
        # Running, not only connected: a room that ends while its actor is still joining has
        # its join cancelled, and no session to save.
        await daemon.wait_line(
            lambda line: line.get("msg") == "room joined", deadline_s=30, what="room joined"
        )
        assert await agent_in(lkapi, room.name)
        async with httpx.AsyncClient(base_url=daemon.url) as client:
            for secret, ttl_s in (("not-" + livekit_server.api_secret, 300), (None, -600)):
                body, headers = webhook(
                    livekit_server,
                    "room_finished",
                    "EV_forged_end",
                    room,
                    secret=secret,
                    ttl_s=ttl_s,
                )
                response = await client.post("/webhook", content=body, headers=headers)
                assert response.status_code == 401
            # Tampered: LiveKit's signature over another room's end.
            body, headers = webhook(livekit_server, "room_finished", "EV_other", room)
            tampered = body.replace(b"fault-wh-end", b"fault-wh-xxx")
            assert (
                await client.post("/webhook", content=tampered, headers=headers)
            ).status_code == 401
            assert await agent_in(lkapi, room.name)

            body, headers = webhook(livekit_server, "room_finished", "EV_real_end", room)
            assert (await client.post("/webhook", content=body, headers=headers)).status_code == 200
        await poll_until(
            lambda: "fault-wh-end" in _session_rooms(daemon.data_dir),
            deadline_s=15,
            what="the session saved after the authentic room_finished",
        )
        daemon.send_signal(signal.SIGTERM)
        assert await daemon.wait_exit(deadline_s=20) == 0
    store = EmbeddedStore(daemon.data_dir / "store.sqlite3")
    try:
        (session,) = [s for s in store.sessions() if s["room"] == "fault-wh-end"]
    finally:
        store.close()
    assert session["end_reason"] == "room finished"


def _session_rooms(data_dir: Path) -> list[str]:
    store = EmbeddedStore(data_dir / "store.sqlite3")
    try:
        return [str(s["room"]) for s in store.sessions()]
    finally:
        store.close()


async def test_a_flood_of_forged_and_replayed_webhooks_leaves_the_room_alone(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> None:
    config = config_toml(livekit_server, webhook_port, tmp_path / "data")
    async with running_daemon(config, tmp_path, webhook_port) as daemon:
        room = await lkapi.room.create_room(
            api.CreateRoomRequest(name="fault-wh-flood", metadata='{"conversation_id": "c-fl"}')
        )
        # Running, not only connected: a room that ends while its actor is still joining has
        # its join cancelled, and no session to save.
        await daemon.wait_line(
            lambda line: line.get("msg") == "room joined", deadline_s=30, what="room joined"
        )
        assert await agent_in(lkapi, room.name)
        forged: list[tuple[bytes, dict[str, str]]] = []
        for i in range(300):
            # A third each: wrong secret, damaged signature, body changed after signing.
            # 32+ bytes: a wrong secret, not a short one (PyJWT warns about those).
            secret = f"wrong-{i}-{livekit_server.api_secret}" if i % 3 == 0 else None
            body, headers = webhook(
                livekit_server, "room_finished", f"EV_flood_{i}", room, secret=secret
            )
            if i % 3 == 1:
                headers["Authorization"] = headers["Authorization"][:-4] + "AAAA"
            elif i % 3 == 2:
                body = body + b" "
            forged.append((body, headers))
        replay = webhook(livekit_server, "room_started", "EV_flood_replay", room)
        statuses: dict[str, list[int]] = {"forged": [], "replay": []}
        limit = anyio.Semaphore(32)

        async def post(
            client: httpx.AsyncClient, kind: str, body: bytes, headers: dict[str, str]
        ) -> None:
            async with limit:
                response = await client.post("/webhook", content=body, headers=headers)
                statuses[kind].append(response.status_code)

        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=daemon.url, limits=limits) as client:
            before = (await client.get("/metrics")).text
            async with anyio.create_task_group() as tg:
                for i, (body, headers) in enumerate(forged):
                    tg.start_soon(post, client, "forged", body, headers)
                    if i % 6 == 0:
                        tg.start_soon(post, client, "replay", *replay)
            after = (await client.get("/metrics")).text
            assert (await client.get("/readyz")).status_code == 200
        assert statuses["forged"] == [401] * 300
        assert set(statuses["replay"]) == {200}
        assert counter(after, "unauthorized") - counter(before, "unauthorized") == 300
        replays = len(statuses["replay"])
        assert counter(after, "duplicate") - counter(before, "duplicate") == replays - 1
        # The room kept its agent, and its actor was never stopped or restarted.
        assert await agent_in(lkapi, room.name)
        # Joined once, despite the replays (other tests' leftover rooms may be joined too).
        joined = [line.get("room") for line in daemon.messages("room joined")]
        assert joined.count(room.name) == 1, joined
        assert _session_rooms(daemon.data_dir) == []
        daemon.send_signal(signal.SIGTERM)
        assert await daemon.wait_exit(deadline_s=20) == 0
    assert _session_rooms(daemon.data_dir) == [room.name]
