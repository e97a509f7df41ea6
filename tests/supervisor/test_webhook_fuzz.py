"""The webhook endpoint under hostile input: fuzzed bodies and headers over raw HTTP, the token
check against livekit-api's verifier, floods, replays and bodies that arrive in pieces.

Invariants: the endpoint answers only 200/400/401/413/503 (never 500), a request that is not
authentic never reaches the supervisor, an authentic one is never refused as unauthorized, and
memory stays bounded (the id memory at ``dedupe_size``, the mailbox at its size).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import anyio
import httpx
import pytest
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from anyio.from_thread import BlockingPortal, start_blocking_portal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from livekit import api

from supervisor._http import build_app
from supervisor._messages import ParticipantJoined, RoomFinished, RoomStarted, SupervisorMessage
from supervisor.webhook import WebhookEndpoint, WebhookVerifier

pytestmark = [pytest.mark.faults]

KEY, SECRET = "devkey", "a-fuzz-secret-that-is-long-enough-for-hs256"
MAX_BODY = 4096
BODY_TIMEOUT_S = 5.0
MAILBOX = 8
DEDUPE = 50
ALLOWED = {200, 400, 401, 413, 503}

FUZZ = settings(
    max_examples=120,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# -- signing ----------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def body_hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def jwt_token(
    claims: dict[str, Any],
    *,
    header: dict[str, Any] | None = None,
    secret: str = SECRET,
) -> str:
    """A token built by hand, so that tests can make any header and claim."""
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing_input = f"{head}.{payload}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def livekit_token(body: bytes, *, secret: str = SECRET, ttl_s: float = 300) -> str:
    """A token as LiveKit makes it (the livekit-api minter)."""
    import datetime

    return (
        api.AccessToken(KEY, secret)
        .with_sha256(body_hash(body))
        .with_ttl(datetime.timedelta(seconds=ttl_s))
        .to_jwt()
    )


# -- a real endpoint over HTTP ----------------------------------------------------------------


@dataclass
class Served:
    port: int
    handler: WebhookEndpoint
    mailbox: MemoryObjectReceiveStream[SupervisorMessage]

    def drain(self) -> list[SupervisorMessage]:
        out = []
        while True:
            try:
                out.append(self.mailbox.receive_nowait())
            except anyio.WouldBlock:
                return out

    def queued(self) -> int:
        return self.mailbox.statistics().current_buffer_used


@asynccontextmanager
async def serving(now: Callable[[], float] = time.time) -> AsyncIterator[Served]:
    send, receive = anyio.create_memory_object_stream[SupervisorMessage](MAILBOX)
    handler = WebhookEndpoint(
        WebhookVerifier(KEY, SECRET),
        send,
        dedupe_size=DEDUPE,
        max_body_bytes=MAX_BODY,
        body_timeout_s=BODY_TIMEOUT_S,
        now=now,
        accepting=lambda: True,
    )
    runner = web.AppRunner(build_app(handler, lambda: (True, {})), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site.port  # after start(): the port bound, not the 0 asked for
    try:
        yield Served(port, handler, receive)
    finally:
        await runner.cleanup()
        send.close()
        receive.close()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serving() as s:
        yield s


@dataclass
class Threaded:
    """An endpoint served by an event loop in a thread, for the (synchronous) Hypothesis tests."""

    portal: BlockingPortal
    served: Served

    def exchange(self, raw: bytes) -> int:
        return self.portal.call(exchange, self.served.port, raw)

    def drain(self) -> list[SupervisorMessage]:
        return self.portal.call(self.served.drain)

    def bounded(self) -> bool:
        def check() -> bool:
            handler, queued = self.served.handler, self.served.queued()
            return handler.remembered_ids <= DEDUPE and queued <= MAILBOX

        return self.portal.call(check)


@pytest.fixture(scope="module")
def threaded() -> Iterator[Threaded]:
    with start_blocking_portal(backend="asyncio") as portal:
        with portal.wrap_async_context_manager(serving()) as s:
            yield Threaded(portal, s)


async def exchange(port: int, raw: bytes) -> int:
    """Send raw request bytes on a fresh connection; the response's status code."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(raw)
        data = b""
        with anyio.fail_after(10):
            while b"\r\n" not in data:
                try:
                    data += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    assert data.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), data[:80]
    return int(data[9:12])


def request_bytes(body: bytes, authorization: bytes | None, *, chunked: bool = False) -> bytes:
    head = b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += b"Content-Type: application/webhook+json\r\n"
    if authorization is not None:
        head += b"Authorization: " + authorization + b"\r\n"
    if not chunked:
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    head += b"Transfer-Encoding: chunked\r\n\r\n"
    half = len(body) // 2
    chunks = [c for c in (body[:half], body[half:]) if c]
    return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


# -- strategies -------------------------------------------------------------------------------


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # A named function: hypothesis misreads the parenthesised lambda and warns (an error here).
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    _containers,
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=300).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(min_size=MAX_BODY + 1, max_size=MAX_BODY + 300),
    st.integers(min_value=1, max_value=2000).map(lambda n: b"[" * n + b"]" * n),
)
header_bytes = st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
jwt_shaped = st.lists(st.binary(max_size=60).map(b64url), min_size=3, max_size=3).map(".".join)


@st.composite
def authorizations(draw: st.DrawFn, body: bytes) -> tuple[bytes | None, bool]:
    """An Authorization value for ``body`` and whether it is authentic."""
    kind = draw(
        st.sampled_from(
            [
                "none",
                "random",
                "bearer_random",
                "jwt_shaped",
                "other_body",
                "wrong_secret",
                "expired",
                "wrong_issuer",
                "authentic",
                "bearer_authentic",
            ]
        )
    )
    match kind:
        case "none":
            return None, False
        case "random":
            return draw(header_bytes), False
        case "bearer_random":
            return b"Bearer " + draw(header_bytes), False
        case "jwt_shaped":
            return draw(jwt_shaped).encode(), False
        case "other_body":
            return livekit_token(body + b"x").encode(), False
        case "wrong_secret":
            return livekit_token(body, secret="x" + SECRET).encode(), False
        case "expired":
            return livekit_token(body, ttl_s=-600).encode(), False
        case "wrong_issuer":
            claims = {"iss": "someone-else", "exp": time.time() + 300, "sha256": body_hash(body)}
            return jwt_token(claims).encode(), False
        case "authentic":
            return livekit_token(body).encode(), len(body) <= MAX_BODY
        case _:
            return b"Bearer " + livekit_token(body).encode(), len(body) <= MAX_BODY


# -- fuzzing over HTTP ------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), body=bodies, chunked=st.booleans())
def test_fuzzed_requests_get_only_the_documented_statuses(
    threaded: Threaded, data: st.DataObject, body: bytes, chunked: bool
) -> None:
    authorization, authentic = data.draw(authorizations(body))
    status = threaded.exchange(request_bytes(body, authorization, chunked=chunked))
    assert status in ALLOWED
    delivered = threaded.drain()
    if authentic:
        assert status in {200, 400, 503}
    else:
        assert status != 200
        assert delivered == []
    assert threaded.bounded()


text_or_junk = st.one_of(st.text(max_size=12), st.none(), json_values)
objects_or_junk = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "name": text_or_junk,
            "sid": text_or_junk,
            "identity": text_or_junk,
            "numParticipants": st.integers(),
            "metadata": st.text(max_size=20),
        },
    ),
    st.none(),
    json_values,
)
events = st.fixed_dictionaries(
    {},
    optional={
        "event": st.one_of(
            st.sampled_from(
                [
                    "room_started",
                    "room_finished",
                    "participant_joined",
                    "participant_left",
                    "track_published",
                    "egress_ended",
                ]
            ),
            text_or_junk,
        ),
        "id": st.one_of(st.text(min_size=1, max_size=12), text_or_junk),
        "room": objects_or_junk,
        "participant": objects_or_junk,
        "createdAt": st.one_of(st.integers(), st.integers().map(str), st.text(max_size=12)),
        "numDropped": st.integers(),
    },
)


def expected(event: dict[str, Any]) -> tuple[int, SupervisorMessage | None]:
    """The oracle: the status and message an authentic event must produce."""
    room, participant = event.get("room"), event.get("participant")
    if not all(v is None or isinstance(v, dict) for v in (room, participant)):
        return 400, None
    texts = [event.get("event"), event.get("id")]
    texts += [(room or {}).get("name"), (room or {}).get("sid")]
    texts += [(participant or {}).get("identity")] if participant is not None else []
    if not all(v is None or isinstance(v, str) for v in texts):
        return 400, None
    name, sid = (room or {}).get("name") or "", (room or {}).get("sid") or ""
    if not name:
        return 200, None
    created = _created_at(event.get("createdAt"))
    match event.get("event"):
        case "room_started":
            return 200, RoomStarted(name, sid, 0.0, created)
        case "room_finished":
            return 200, RoomFinished(name, sid)
        case "participant_joined" if participant is not None:
            identity = participant.get("identity") or ""
            return 200, ParticipantJoined(name, sid, identity, 0.0, created)
    return 200, None


def _created_at(value: object) -> float | None:
    """The event's age is judged from ``createdAt`` when it is an integer, or a string of ASCII
    digits (with a minus sign) as protobuf JSON writes an int64."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value) if -(10**19) < value < 10**19 else None
    if isinstance(value, str):
        digits = value[1:] if value.startswith("-") else value
        if 0 < len(digits) <= 19 and all("0" <= c <= "9" for c in digits):
            return float(int(value))
    return None


@FUZZ
@given(event=events, bearer=st.booleans())
def test_authentic_protobuf_shaped_events_follow_the_oracle(
    threaded: Threaded, event: dict[str, Any], bearer: bool
) -> None:
    body = json.dumps(event).encode()
    token = livekit_token(body).encode()
    status = threaded.exchange(request_bytes(body, b"Bearer " + token if bearer else token))
    want_status, want_message = expected(event)
    assert status == want_status
    delivered = threaded.drain()
    if want_message is None or status != 200:
        assert delivered == []
        return
    # A repeated id is processed once: it may have been delivered by an earlier example.
    if delivered:
        (message,) = delivered
        if isinstance(message, RoomStarted | ParticipantJoined):
            message = dataclasses.replace(message, received_at=0.0)
        assert message == want_message


async def test_deeply_nested_authentic_json_is_malformed_not_unauthorized(served: Served) -> None:
    body = b"[" * 2000 + b"]" * 2000
    assert await exchange(served.port, request_bytes(body, livekit_token(body).encode())) == 400


# -- the token check against livekit-api's -----------------------------------------------------

NOW_OFFSETS = st.sampled_from([-7200, -120, -10, 30, 7200])
FUTURE_OFFSETS = st.sampled_from([-100, 30, 120])


def numeric(offset: st.SearchStrategy[int]) -> st.SearchStrategy[object]:
    """A NumericDate near now, sometimes in a form PyJWT tolerates and we do not."""
    return offset.flatmap(
        lambda o: st.sampled_from(
            [int(time.time()) + o, time.time() + o, str(int(time.time()) + o), True, None]
        )
    )


claim_sets = st.fixed_dictionaries(
    {"sha256": st.one_of(st.just("HASH"), st.text(max_size=10))},
    optional={
        "iss": st.sampled_from([KEY, "other", "", 5]),
        "exp": numeric(NOW_OFFSETS),
        "nbf": numeric(FUTURE_OFFSETS),
        "iat": numeric(FUTURE_OFFSETS),
        "sub": st.sampled_from(["alice", 7]),
        "jti": st.sampled_from(["j1", 7]),
        "aud": st.sampled_from(["", "someone", ["x"]]),
        "video": st.just({"roomJoin": True}),
    },
)
headers = st.fixed_dictionaries(
    {"alg": st.sampled_from(["HS256", "HS256", "HS384", "none", "hs256"])},
    optional={"typ": st.just("JWT"), "kid": st.sampled_from(["k1", 3])},
)


def mutate(token: str, how: str, where: int) -> str:
    match how:
        case "flip":
            i = where % len(token)
            swapped = "A" if token[i] != "A" else "B"
            return token[:i] + swapped + token[i + 1 :]
        case "truncate":
            return token[: where % len(token)]
        case "pad":
            return token + "="
        case "extra_segment":
            return token + ".e30"
    return token


SHARED_VERIFIER = WebhookVerifier(KEY, SECRET)


def livekit_accepts(token: str, body: bytes) -> bool:
    """What livekit-api's WebhookReceiver decides (without its protobuf parse of the body)."""
    try:
        claimed = api.TokenVerifier(KEY, SECRET).verify(token).sha256 or ""
        return bool(claimed) and base64.b64decode(claimed) == hashlib.sha256(body).digest()
    except Exception:
        return False


@settings(max_examples=400, deadline=1000, database=None)
@given(
    claims=claim_sets,
    header=headers,
    right_secret=st.booleans(),
    how=st.sampled_from(["none", "none", "none", "flip", "truncate", "pad", "extra_segment"]),
    where=st.integers(min_value=0, max_value=10_000),
)
def test_the_token_check_never_accepts_what_livekit_refuses(
    claims: dict[str, Any], header: dict[str, Any], right_secret: bool, how: str, where: int
) -> None:
    body = b'{"event":"room_started"}'
    if claims["sha256"] == "HASH":
        claims["sha256"] = body_hash(body)
    token = mutate(
        jwt_token(claims, header=header, secret=SECRET if right_secret else "x" + SECRET),
        how,
        where,
    )
    ours = WebhookVerifier(KEY, SECRET).verify(token, body)
    # One long-lived verifier too: it remembers authentic headers across tokens.
    assert SHARED_VERIFIER.verify(token, body) == ours
    theirs = livekit_accepts(token, body)
    if ours:
        assert theirs, (claims, header, how)
    # Where PyJWT is lenient (numeric claims as strings or booleans) we are stricter; on every
    # other token the two agree.
    lenient = any(isinstance(claims.get(name), str | bool) for name in ("exp", "nbf", "iat"))
    if not lenient:
        assert ours == theirs, (claims, header, how)


def test_tokens_minted_by_livekit_api_are_accepted() -> None:
    body = b'{"event":"room_started","room":{"name":"r"}}'
    verifier = WebhookVerifier(KEY, SECRET)
    assert verifier.verify(livekit_token(body), body)
    assert not verifier.verify(livekit_token(body), body + b" ")
    assert not verifier.verify(livekit_token(body, ttl_s=-120), body)
    assert verifier.verify(livekit_token(body, ttl_s=-30), body)  # within livekit's leeway


# -- floods, replays, bounded memory ----------------------------------------------------------


def signed_event(kind: str, event_id: str, room: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"event": kind, "id": event_id, "room": {"name": room, "sid": "RM_" + room}}
    ).encode()
    return body, {"Authorization": livekit_token(body)}


async def test_a_flood_is_bounded_and_replays_are_processed_once(served: Served) -> None:
    statuses: dict[int, int] = {}
    delivered: list[SupervisorMessage] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}") as client:
        for i in range(300):
            # Every third request replays the previous event id.
            n = i - 1 if i % 3 == 2 else i
            body, headers = signed_event("room_started", f"EV_{n}", f"flood-{n}")
            response = await client.post("/webhook", content=body, headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 503:
                assert response.headers["Retry-After"] == "1"
            assert served.handler.remembered_ids <= DEDUPE
            assert served.queued() <= MAILBOX
            if i % 40 == 39:  # the supervisor catches up now and then
                delivered += served.drain()
    delivered += served.drain()
    assert set(statuses) <= {200, 503}
    assert statuses[503] > 0
    rooms = [m.room for m in delivered]
    assert len(rooms) == len(set(rooms)), "a replayed event was processed twice"
    assert DEDUPE // 2 < served.handler.remembered_ids <= DEDUPE


async def test_a_forged_flood_is_logged_a_bounded_number_of_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = [1000.0]
    async with serving(now=lambda: clock[0]) as s:
        caplog.set_level(logging.INFO, logger="supervisor.webhook._endpoint")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.port}") as client:
            for _ in range(100):
                body, headers = signed_event("room_started", "EV_f", "forged")
                headers["Authorization"] = livekit_token(body, secret="y" + SECRET)
                assert (
                    await client.post("/webhook", content=body, headers=headers)
                ).status_code == 401
            clock[0] += 60
            body, headers = signed_event("room_started", "EV_f", "forged")
            headers["Authorization"] = "garbage"
            assert (await client.post("/webhook", content=body, headers=headers)).status_code == 401
        assert s.drain() == []
    refused = [r for r in caplog.records if r.getMessage() == "webhook refused"]
    assert len(refused) == 2
    assert refused[1].__dict__["similar_unlogged"] == 99


# -- bodies that arrive in pieces -------------------------------------------------------------


def mocked_handler() -> tuple[
    WebhookEndpoint,
    MemoryObjectSendStream[SupervisorMessage],
    MemoryObjectReceiveStream[SupervisorMessage],
]:
    send, receive = anyio.create_memory_object_stream[SupervisorMessage](MAILBOX)
    handler = WebhookEndpoint(
        WebhookVerifier(KEY, SECRET),
        send,
        dedupe_size=DEDUPE,
        max_body_bytes=MAX_BODY,
        body_timeout_s=BODY_TIMEOUT_S,
        now=lambda: 5.0,
        accepting=lambda: True,
    )
    return handler, send, receive


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "chunked"])
async def test_a_body_that_arrives_in_two_pieces_is_read_whole(with_length: bool) -> None:
    handler, send, receive = mocked_handler()
    body, headers = signed_event("room_started", "EV_split", "split")
    if with_length:
        headers["Content-Length"] = str(len(body))
    payload = StreamReader(mock.Mock(_reading_paused=False), 2**16)
    request = make_mocked_request("POST", "/webhook", headers=headers, payload=payload)
    payload.feed_data(body[:10])
    responses: list[web.Response] = []

    async def call() -> None:
        responses.append(await handler.handle(request))

    with send, receive:
        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await anyio.wait_all_tasks_blocked()
            assert responses == [], "answered before the rest of the body arrived"
            payload.feed_data(body[10:])
            payload.feed_eof()
        assert responses[0].status == 200
        assert receive.receive_nowait() == RoomStarted("split", "RM_split", 5.0)


async def test_a_body_cut_short_of_its_content_length_is_malformed() -> None:
    handler, send, receive = mocked_handler()
    body, headers = signed_event("room_started", "EV_short", "short")
    headers["Content-Length"] = str(len(body))
    payload = StreamReader(mock.Mock(_reading_paused=False), 2**16)
    request = make_mocked_request("POST", "/webhook", headers=headers, payload=payload)
    payload.feed_data(body[:10])
    payload.feed_eof()
    with send, receive:
        assert (await handler.handle(request)).status == 400
        assert receive.statistics().current_buffer_used == 0


async def test_an_oversized_chunked_body_gets_413(served: Served) -> None:
    body = b"x" * (MAX_BODY + 100)
    raw = request_bytes(body, livekit_token(body).encode(), chunked=True)
    assert await exchange(served.port, raw) == 413
