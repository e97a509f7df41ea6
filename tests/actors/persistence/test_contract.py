"""The backend contract: the OpenAPI file is valid, what the actor sends and what the reference
backend answers conform to it, and the backend's validator refuses what the spec refuses."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
from pydantic import SecretStr

from actors import Event, EventType
from actors.persistence import EmbeddedStore, PersistenceActor, build_backend_app
from actors.persistence._contract import ContractError, parse_batch
from actors.tools import ToolCallSettings, ToolContext, open_tools
from tests.actors.persistence.conftest import running, settings, turn
from tests.fakes.backend import Captured, FaultyBackend, running_backend

pytestmark = pytest.mark.anyio

SPEC_PATH = Path(__file__).resolve().parents[3] / "docs" / "backend-openapi.yaml"
TOKEN = "contract-token"


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH))


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[FaultyBackend]:
    async with running_backend(tmp_path / "backend.sqlite3", token=TOKEN) as served:
        yield served


def as_request(base: str, c: Captured) -> MockRequest:
    return MockRequest(
        base,
        c.method.lower(),
        c.path,
        args=c.query,
        headers=c.headers,
        data=c.body or None,
        content_type=c.headers.get("Content-Type", "application/json").split(";")[0],
    )


def as_response(c: Captured) -> MockResponse:
    return MockResponse(
        c.response_body,
        status_code=c.status,
        headers=c.response_headers,
        content_type=c.response_headers.get("Content-Type", "").split(";")[0],
    )


def test_the_openapi_file_is_valid_openapi_3_1() -> None:
    document, _ = read_from_filename(str(SPEC_PATH))
    assert document["openapi"].startswith("3.1")
    validate(document)
    assert set(document["paths"]) == {
        "/v1/events:batch",
        "/v1/rooms/{room}/agent-joined",
        "/v1/conversations/{conversation_id}/messages",
        "/v1/tools",
        "/v1/tools/{name}:invoke",
    }
    types = document["components"]["schemas"]["EventEnvelope"]["properties"]["type"]["enum"]
    assert types == [str(t) for t in EventType]


async def test_what_the_actor_sends_and_the_backend_answers_conform(
    tmp_path: Path, store: EmbeddedStore, secured: FaultyBackend, spec: OpenAPI
) -> None:
    actor = PersistenceActor(settings(tmp_path / "data", secured), store)
    async with running(actor):
        cid = await actor.agent_joined("room-1", {"user_id": "u-1", "language": "en"})
        events = [
            turn(cid, 1, latency_ms={"stt": 80.5, "llm": 200}),
            turn(cid, 2, role="assistant", speaker=None, interrupted=True),
            Event(EventType.PARTICIPANT_CONNECTED, "room-1", cid, {"identity": "alice"}, 1.0),
            Event(EventType.PARTICIPANT_DISCONNECTED, "room-1", cid, {"identity": "alice"}, 2),
            Event(EventType.AGENT_JOINED, "room-1", cid, {"identity": "agent", "attempt": 1}, 1),
            Event(EventType.SESSION, "room-1", cid, {"started_at": 1, "ended_at": 2.5}, 2.5),
            Event(EventType.FILE, "room-1", cid, {"name": "f", "mime_type": "a/b", "size": 0}, 2),
            Event(EventType.ERROR, "room-1", cid, {"code": "tts", "message": "failed"}, 3),
        ]
        for event in events:
            actor.emit(event)
        await actor.wait_empty()
        await actor.recent_messages(cid, 5)
    assert {c.path for c in secured.captured} == {
        "/v1/rooms/room-1/agent-joined",
        "/v1/events:batch",
        f"/v1/conversations/{cid}/messages",
    }
    for c in secured.captured:
        assert c.status == 200
        request = as_request(secured.url, c)
        spec.validate_request(request)
        spec.validate_response(request, as_response(c))


async def test_tool_requests_and_answers_conform(
    tmp_path: Path, store: EmbeddedStore, secured: FaultyBackend, spec: OpenAPI
) -> None:
    box = open_tools(
        ToolCallSettings(),
        (),
        (),
        backend_url=secured.url,
        backend_token=SecretStr(TOKEN),
    )
    await box._refresh_backend()
    (demo,) = [t for t in box.offered() if t.name == "order_status"]
    for n, context in enumerate(
        (ToolContext("conv", "room", "alice", "operator"), ToolContext("conv", "room", None))
    ):
        await box.invoke(demo, '{"order_id": "42"}', context, f"call-{n}")
    await box.aclose()
    # The tool events and their messages conform too.
    actor = PersistenceActor(settings(tmp_path / "data", secured), store)
    async with running(actor):
        for kind, data in (
            (EventType.TOOL_CALL, {"call_id": "c", "name": "order_status", "arguments": "{}"}),
            (EventType.TOOL_RESULT, {"call_id": "c", "name": "order_status", "content": "ok"}),
            (EventType.TOOL_ERROR, {"call_id": "d", "name": "x", "code": "timeout"}),
        ):
            actor.emit(Event(kind, "room", "conv", data, 1.0))
        await actor.wait_empty()
        rows = await actor.recent_messages("conv", 5)
    assert [(r["role"], r.get("tool_call_id")) for r in rows] == [
        ("tool_call", "c"),
        ("tool", "c"),
        ("tool", "d"),
    ]
    paths = {c.path for c in secured.captured}
    assert {"/v1/tools", "/v1/tools/order_status:invoke"} <= paths
    for c in secured.captured:
        assert c.status == 200
        request = as_request(secured.url, c)
        spec.validate_request(request)
        spec.validate_response(request, as_response(c))


async def test_the_backends_error_answers_conform(
    secured: FaultyBackend, tmp_path: Path, spec: OpenAPI
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    good = {"events": [turn("c", 1).to_json()]}
    bad = copy.deepcopy(good)
    bad["events"][0]["data"]["role"] = "robot"
    async with httpx.AsyncClient(base_url=secured.url) as client:
        await client.post("/v1/events:batch", json=good)  # no token: 401
        await client.post("/v1/events:batch", json=bad, headers=auth)
        await client.post("/v1/events:batch", content=b"{not json", headers=auth)
        await client.post("/v1/events:batch", json=good, headers=auth)
        await client.post("/v1/events:batch", json=good, headers=auth)  # a duplicate
        await client.post("/v1/rooms/r/agent-joined", json={"meta": {}}, headers=auth)
        await client.get("/v1/conversations/c/messages", params={"limit": 0}, headers=auth)
        await client.get("/v1/conversations/nobody/messages", headers=auth)
    statuses = [c.status for c in secured.captured]
    assert statuses == [401, 400, 400, 200, 200, 400, 400, 200]
    for c in secured.captured:
        request = as_request(secured.url, c)
        spec.validate_response(request, as_response(c))
    named = json.loads(secured.captured[1].response_body)
    assert (named["event_index"], named["event_id"]) == (0, "EV_00000001")
    assert json.loads(secured.captured[4].response_body) == {"accepted": 0, "duplicates": 1}
    assert secured.captured[0].response_headers["WWW-Authenticate"] == "Bearer"


async def test_both_refuse_an_invocation_whose_caller_role_is_not_text(
    secured: FaultyBackend, spec: OpenAPI
) -> None:
    body = {"call_id": "c", "arguments": {"order_id": "1"}, "conversation_id": "conv"}
    body |= {"room": "room", "caller": "alice", "caller_role": ["operator"]}
    async with httpx.AsyncClient(base_url=secured.url) as client:
        answer = await client.post(
            "/v1/tools/order_status:invoke", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert answer.status_code == 400 and "caller_role" in answer.json()["error"]
    (captured,) = secured.captured
    assert list(spec.iter_request_errors(as_request(secured.url, captured)))
    assert secured.tool_routes is not None and secured.tool_routes.invocations == []


async def test_a_body_too_large_gets_a_json_413(tmp_path: Path, spec: OpenAPI) -> None:
    store = EmbeddedStore(tmp_path / "small.sqlite3")
    runner = web.AppRunner(build_backend_app(store, max_body_bytes=1024), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site.port  # after start(): the port bound, not the 0 asked for
        body = {"events": [turn("c", i, content="x" * 200).to_json() for i in range(10)]}
        async with httpx.AsyncClient() as client:
            response = await client.post(f"http://127.0.0.1:{port}/v1/events:batch", json=body)
        assert response.status_code == 413
        request = MockRequest(
            f"http://127.0.0.1:{port}", "post", "/v1/events:batch", data=response.request.content
        )
        spec.validate_response(
            request, MockResponse(response.content, status_code=413, headers=dict(response.headers))
        )
    finally:
        await runner.cleanup()
        store.close()


# -- the backend's validator and the spec agree --------------------------------------------------

BASE = turn("c", 1).to_json()


def mutated(path: str, value: Any) -> dict[str, Any]:
    """BASE with one field set (``"data.role"``) or removed (value ``...``)."""
    event = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    target = event
    for key in parents:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return event


GOOD = [
    BASE,
    mutated("data.speaker", None),
    mutated("ts", 3),
    mutated("data.latency_ms", {"llm": 1}),
    mutated("extra", "ignored"),
    {
        "id": "f",
        "type": "file",
        "ts": 1,
        "room": "r",
        "conversation_id": "c",
        "data": {"name": "n", "mime_type": "m", "size": 1},
    },
    {"id": "a", "type": "agent_joined", "ts": 1, "room": "r", "conversation_id": "c", "data": {}},
]
BAD = [
    mutated("id", ...),
    mutated("id", ""),
    mutated("id", 7),
    mutated("type", "chat"),
    mutated("ts", "yesterday"),
    mutated("ts", True),
    mutated("room", ""),
    mutated("conversation_id", None),
    mutated("data", []),
    mutated("data.role", "robot"),
    mutated("data.role", ...),
    mutated("data.content", ...),
    mutated("data.content", 5),
    mutated("data.speaker", 5),
    mutated("data.interrupted", "yes"),
    mutated("data.user_id", {"id": 1}),
    {
        "id": "p",
        "type": "participant_connected",
        "ts": 1,
        "room": "r",
        "conversation_id": "c",
        "data": {"name": "no identity"},
    },
    {
        "id": "s",
        "type": "session",
        "ts": 1,
        "room": "r",
        "conversation_id": "c",
        "data": {"started_at": 1},
    },
    {
        "id": "f",
        "type": "file",
        "ts": 1,
        "room": "r",
        "conversation_id": "c",
        "data": {"name": "n", "mime_type": "m", "size": -1},
    },
    "not an object",
]


def spec_accepts(spec: OpenAPI, body: Any) -> bool:
    request = MockRequest(
        "http://backend",
        "post",
        "/v1/events:batch",
        headers={"Authorization": "Bearer t"},
        data=json.dumps(body).encode(),
    )
    return not list(spec.iter_request_errors(request))


@pytest.mark.parametrize("event", GOOD)
def test_both_accept_a_good_event(spec: OpenAPI, event: Any) -> None:
    body = {"events": [event]}
    assert spec_accepts(spec, body)
    assert len(parse_batch(json.dumps(body).encode())) == 1


@pytest.mark.parametrize("event", BAD)
def test_both_refuse_a_bad_event(spec: OpenAPI, event: Any) -> None:
    body = {"events": [BASE, event]}
    assert not spec_accepts(spec, body)
    with pytest.raises(ContractError) as refused:
        parse_batch(json.dumps(body).encode())
    assert refused.value.event_index == 1


@pytest.mark.parametrize("body", [[], {"event": []}, {"events": {}}])
def test_both_refuse_a_body_that_is_not_a_batch(spec: OpenAPI, body: Any) -> None:
    assert not spec_accepts(spec, body)
    with pytest.raises(ContractError) as refused:
        parse_batch(json.dumps(body).encode())
    assert refused.value.event_index is None
