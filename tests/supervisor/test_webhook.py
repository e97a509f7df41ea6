"""The webhook endpoint over real HTTP: verification, de-duplication, limits, and the token
checked before the body is read (slow bodies time out)."""

from __future__ import annotations

import base64
import datetime
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import httpx
import pytest
from aiohttp import web
from anyio.streams.memory import MemoryObjectReceiveStream
from google.protobuf.json_format import MessageToJson
from livekit import api

from supervisor._http import build_app
from supervisor._messages import ParticipantJoined, RoomFinished, RoomStarted, SupervisorMessage
from supervisor.webhook import WebhookEndpoint, WebhookVerifier

KEY, SECRET = "devkey", "a-test-secret-that-is-long-enough-for-hs256"
BODY_TIMEOUT_S = 1.0


def signed(
    event: api.WebhookEvent,
    *,
    key: str = KEY,
    secret: str = SECRET,
    ttl: datetime.timedelta = datetime.timedelta(minutes=5),
) -> tuple[str, dict[str, str]]:
    body = MessageToJson(event)
    return body, headers_for(body, key=key, secret=secret, ttl=ttl)


def headers_for(
    body: str,
    *,
    key: str = KEY,
    secret: str = SECRET,
    ttl: datetime.timedelta = datetime.timedelta(minutes=5),
) -> dict[str, str]:
    sha = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = api.AccessToken(key, secret).with_sha256(sha).with_ttl(ttl).to_jwt()
    return {"Authorization": token, "Content-Type": "application/webhook+json"}


def room_event(
    kind: str, event_id: str, room: str = "r1", participant: api.ParticipantInfo | None = None
) -> api.WebhookEvent:
    return api.WebhookEvent(
        event=kind,
        id=event_id,
        created_at=1_700_000_000,
        room=api.Room(sid="RM_" + room, name=room),
        participant=participant,
    )


@dataclass
class Endpoint:
    url: str
    mailbox: MemoryObjectReceiveStream[SupervisorMessage]
    accepting: list[bool]

    def drained(self) -> list[SupervisorMessage]:
        out = []
        while True:
            try:
                out.append(self.mailbox.receive_nowait())
            except anyio.WouldBlock:
                return out


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    send, receive = anyio.create_memory_object_stream[SupervisorMessage](4)
    accepting = [True]
    handler = WebhookEndpoint(
        WebhookVerifier(KEY, SECRET),
        send,
        dedupe_size=100,
        max_body_bytes=4096,
        body_timeout_s=BODY_TIMEOUT_S,
        now=lambda: 1.0,
        accepting=lambda: accepting[0],
    )
    runner = web.AppRunner(build_app(handler, lambda: (True, {})))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site.port  # after start(): the port bound, not the 0 asked for
    try:
        yield Endpoint(f"http://127.0.0.1:{port}", receive, accepting)
    finally:
        await runner.cleanup()
        send.close()
        receive.close()


async def post(ep: Endpoint, body: str | bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(ep.url + "/webhook", content=body, headers=headers)


async def test_valid_events_become_supervisor_messages(endpoint: Endpoint) -> None:
    participant = api.ParticipantInfo(identity="alice")
    for event in (
        room_event("room_started", "EV_1"),
        room_event("participant_joined", "EV_2", participant=participant),
        room_event("room_finished", "EV_3"),
    ):
        body, headers = signed(event)
        assert (await post(endpoint, body, headers)).status_code == 200
    assert endpoint.drained() == [
        RoomStarted("r1", "RM_r1", 1.0, created_at=1_700_000_000),
        ParticipantJoined("r1", "RM_r1", "alice", 1.0, created_at=1_700_000_000),
        RoomFinished("r1", "RM_r1"),
    ]


async def test_a_repeated_event_id_is_processed_once(endpoint: Endpoint) -> None:
    body, headers = signed(room_event("room_started", "EV_dup"))
    statuses = [(await post(endpoint, body, headers)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len(endpoint.drained()) == 1


@pytest.mark.parametrize(
    "case", ["missing", "wrong_secret", "garbage", "tampered", "expired", "no_sha256"]
)
async def test_forged_webhooks_are_refused_with_401(endpoint: Endpoint, case: str) -> None:
    body, headers = signed(room_event("room_started", "EV_forged"))
    match case:
        case "missing":
            del headers["Authorization"]
        case "wrong_secret":
            headers = headers_for(body, secret="not-the-secret-not-the-secret-not-the-secret")
        case "garbage":
            headers["Authorization"] = "not.a.jwt"
        case "tampered":
            body = body.replace("r1", "r2")
        case "expired":
            headers = headers_for(body, ttl=datetime.timedelta(minutes=-5))
        case "no_sha256":
            headers["Authorization"] = api.AccessToken(KEY, SECRET).to_jwt()
    response = await post(endpoint, body, headers)
    assert response.status_code == 401
    assert endpoint.drained() == []


async def test_malformed_bodies_get_400(endpoint: Endpoint) -> None:
    for body in ("{not json", '{"event": 5, "room": "x"}'):
        response = await post(endpoint, body, headers_for(body))
        assert response.status_code == 400, body
    raw = b"\xff\xfe"
    response = await post(endpoint, raw, headers_for("x") | {})
    assert response.status_code in (400, 401)
    assert endpoint.drained() == []


async def test_oversized_bodies_get_413(endpoint: Endpoint) -> None:
    body = '{"event": "room_started", "id": "' + "x" * 5000 + '"}'
    response = await post(endpoint, body, headers_for(body))
    assert response.status_code == 413


async def test_unknown_event_types_are_accepted_and_ignored(endpoint: Endpoint) -> None:
    body, headers = signed(room_event("egress_started", "EV_egress"))
    assert (await post(endpoint, body, headers)).status_code == 200
    assert endpoint.drained() == []


async def test_a_full_mailbox_answers_503_with_retry_after(endpoint: Endpoint) -> None:
    statuses = []
    for i in range(6):
        body, headers = signed(room_event("room_started", f"EV_flood_{i}", room=f"r{i}"))
        response = await post(endpoint, body, headers)
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert response.headers["Retry-After"] == "1"
    assert statuses == [200, 200, 200, 200, 503, 503]
    assert len(endpoint.drained()) == 4
    # The refused events were not remembered: LiveKit's retry gets through.
    body, headers = signed(room_event("room_started", "EV_flood_4", room="r4"))
    assert (await post(endpoint, body, headers)).status_code == 200


async def test_draining_answers_503(endpoint: Endpoint) -> None:
    endpoint.accepting[0] = False
    body, headers = signed(room_event("room_started", "EV_drain"))
    response = await post(endpoint, body, headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


# -- the token before the body ----------------------------------------------------------------


def stalled_request(authorization: str | None, body: bytes, sent: int) -> bytes:
    """The head of a request for ``body`` and only its first ``sent`` bytes."""
    head = "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "Content-Type: application/webhook+json\r\n"
    if authorization is not None:
        head += f"Authorization: {authorization}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body[:sent]


async def read_status(stream: anyio.abc.ByteStream) -> int:
    data = b""
    while b"\r\n" not in data:
        data += await stream.receive()
    assert data.startswith(b"HTTP/1.1 "), data[:80]
    return int(data[9:12])


async def read_until_closed(stream: anyio.abc.ByteStream) -> str:
    """How the server ended the connection: "closed" (FIN) or "reset"."""
    try:
        while True:
            await stream.receive()
    except anyio.EndOfStream:
        return "closed"
    except anyio.BrokenResourceError:
        return "reset"


def port_of(ep: Endpoint) -> int:
    return int(ep.url.rsplit(":", 1)[1])


@pytest.mark.parametrize("case", ["missing", "wrong_secret", "expired", "no_sha256"])
async def test_a_bad_token_is_answered_401_before_its_body_arrives(
    endpoint: Endpoint, case: str
) -> None:
    body, headers = signed(room_event("room_finished", "EV_stall_401"))
    token: str | None = headers["Authorization"]
    match case:
        case "missing":
            token = None
        case "wrong_secret":
            token = headers_for(body, secret="not-the-secret-not-the-secret-not-the-secret")[
                "Authorization"
            ]
        case "expired":
            token = headers_for(body, ttl=datetime.timedelta(minutes=-5))["Authorization"]
        case "no_sha256":
            token = api.AccessToken(KEY, SECRET).to_jwt()
    raw = body.encode()
    async with await anyio.connect_tcp("127.0.0.1", port_of(endpoint)) as stream:
        await stream.send(stalled_request(token, raw, 10))
        # Answered while the body is still incomplete (well before the body timeout).
        with anyio.fail_after(BODY_TIMEOUT_S / 2):
            assert await read_status(stream) == 401
        # An honest client finishing its body gets a clean close, not a reset.
        await stream.send(raw[10:])
        with anyio.fail_after(BODY_TIMEOUT_S):
            assert await read_until_closed(stream) == "closed"
    assert endpoint.drained() == []


async def test_a_bad_token_with_a_body_that_never_ends_is_closed_after_the_body_timeout(
    endpoint: Endpoint,
) -> None:
    body, headers = signed(room_event("room_finished", "EV_loris_401"))
    forged = headers_for(body, secret="not-the-secret-not-the-secret-not-the-secret")
    async with await anyio.connect_tcp("127.0.0.1", port_of(endpoint)) as stream:
        await stream.send(stalled_request(forged["Authorization"], body.encode(), 10))
        with anyio.fail_after(BODY_TIMEOUT_S / 2):
            assert await read_status(stream) == 401
        with anyio.fail_after(BODY_TIMEOUT_S * 3):
            assert await read_until_closed(stream) in ("closed", "reset")


async def test_a_signed_webhook_whose_body_stalls_gets_408_and_its_connection_closed(
    endpoint: Endpoint,
) -> None:
    body, headers = signed(room_event("room_finished", "EV_loris_408"))
    async with await anyio.connect_tcp("127.0.0.1", port_of(endpoint)) as stream:
        await stream.send(stalled_request(headers["Authorization"], body.encode(), 10))
        started = anyio.current_time()
        with anyio.fail_after(BODY_TIMEOUT_S * 3):
            assert await read_status(stream) == 408
            assert anyio.current_time() - started >= BODY_TIMEOUT_S * 0.9
            assert await read_until_closed(stream) == "closed"
    assert endpoint.drained() == []
    # The endpoint still answers the next, whole, webhook.
    assert (await post(endpoint, body, headers)).status_code == 200
