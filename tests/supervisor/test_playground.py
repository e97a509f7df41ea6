"""The playground's routes over real HTTP, with a fake room service and message source; and
the committed build of the page matching its sources."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from livekit import api

from actors import ConfigError, PersistenceError
from supervisor.playground import STATIC_DIR, Playground, PlaygroundSettings

ROOT = Path(__file__).resolve().parents[2]
KEY, SECRET = "devkey", "a-test-secret-that-is-long-enough-for-hs256"
LIVEKIT_URL = "ws://127.0.0.1:7880"


@dataclass
class FakeRooms:
    created: list[api.CreateRoomRequest] = field(default_factory=list)
    refuse: bool = False

    async def create_room(self, create: api.CreateRoomRequest) -> api.Room:
        if self.refuse:
            raise api.TwirpError("unavailable", "server is draining", status=503)
        self.created.append(create)
        return api.Room(name=create.name, metadata=create.metadata)


@dataclass
class FakeMessages:
    stored: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    flushes: int = 0
    stopped: bool = False

    async def flush(self) -> None:
        if self.stopped:
            raise PersistenceError("cannot flush: the persistence actor has stopped")
        self.flushes += 1

    async def recent_messages(self, conversation_id: str, limit: int) -> list[dict[str, Any]]:
        return self.stored.get(conversation_id, [])[-limit:]


@dataclass
class Rig:
    url: str
    rooms: FakeRooms
    messages: FakeMessages
    wanted: list[bool]

    async def post_token(
        self, body: object = None, *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(
                self.url + "/playground/token",
                content=b"" if body is None else json.dumps(body).encode(),
                headers={"Content-Type": "application/json", **(headers or {})},
            )

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.get(self.url + path)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rooms, messages, wanted = FakeRooms(), FakeMessages(), [True]
    playground = Playground(
        PlaygroundSettings(enabled=True, messages_limit=50),
        livekit_url=LIVEKIT_URL,
        api_key=KEY,
        api_secret=SECRET,
        rooms=rooms,
        messages=messages,
        wants_room=lambda _room: wanted[0],
    )
    app = web.Application()
    app.router.add_routes(playground.routes())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # bound above
    try:
        yield Rig(f"http://127.0.0.1:{port}", rooms, messages, wanted)
    finally:
        await runner.cleanup()


async def test_the_page_and_its_bundle_are_served_from_the_package(rig: Rig) -> None:
    for path in ("/playground", "/playground/"):
        page = await rig.get(path)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert '<script type="module" src="/playground/static/playground.js">' in page.text
    script = await rig.get("/playground/static/playground.js")
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    assert "livekit-client@" in script.text[:2000]  # the bundled client, named in the banner
    for missing in ("/playground/static/nope.js", "/playground/static/..%2F_routes.py"):
        assert (await rig.get(missing)).status_code == 404


async def test_a_token_opens_a_room_with_conversation_metadata(rig: Rig) -> None:
    response = await rig.post_token({"name": "Pat"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["url"] == LIVEKIT_URL
    assert re.fullmatch(r"playground-[0-9a-f]{8}", answer["room"])
    assert answer["conversation_id"].startswith("pg_") and answer["user_id"] == "playground"
    (created,) = rig.rooms.created
    assert created.name == answer["room"]
    assert json.loads(created.metadata) == {
        "conversation_id": answer["conversation_id"],
        "user_id": "playground",
    }
    claims = api.TokenVerifier(KEY, SECRET).verify(answer["token"])
    assert claims.identity == answer["identity"] and claims.name == "Pat"
    assert claims.video is not None
    assert claims.video.room == answer["room"] and claims.video.room_join
    assert claims.video.can_publish and claims.video.can_subscribe and claims.video.can_publish_data
    assert not claims.video.room_admin and not claims.video.agent


async def test_a_token_can_resume_a_conversation(rig: Rig) -> None:
    response = await rig.post_token({"conversation_id": "c-42", "user_id": "u-7"})
    assert response.json()["conversation_id"] == "c-42"
    metadata = json.loads(rig.rooms.created[0].metadata)
    assert metadata == {"conversation_id": "c-42", "user_id": "u-7"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "error"),
    [
        ({"conversation_id": "no spaces"}, {}, 400, "conversation_id"),
        ({"room": "mine"}, {}, 400, "room: Extra inputs are not permitted"),
        ([1], {}, 400, "invalid token request"),
        ({}, {"Content-Type": "text/plain"}, 415, "JSON body"),
        ({}, {"Origin": "http://evil.example"}, 403, "cross-origin"),
    ],
)
async def test_bad_token_requests_are_refused(
    rig: Rig, body: object, headers: dict[str, str], status: int, error: str
) -> None:
    response = await rig.post_token(body, headers=headers)
    assert response.status_code == status
    assert error in response.json()["error"]
    assert rig.rooms.created == []


async def test_a_same_origin_request_and_an_empty_body_are_fine(rig: Rig) -> None:
    response = await rig.post_token(headers={"Origin": rig.url})
    assert response.status_code == 200


async def test_rooms_the_agent_would_not_join_are_not_opened(rig: Rig) -> None:
    rig.wanted[0] = False
    response = await rig.post_token({})
    assert response.status_code == 409
    assert "[agent] rooms" in response.json()["error"]
    assert rig.rooms.created == []


async def test_a_livekit_refusal_is_a_502(rig: Rig) -> None:
    rig.rooms.refuse = True
    response = await rig.post_token({})
    assert response.status_code == 502
    assert "server is draining" in response.json()["error"]


async def test_stored_messages_are_read_after_a_flush(rig: Rig) -> None:
    turns = [
        {"role": "user", "content": f"turn {i}", "ts": float(i), "speaker": "pat"}
        for i in range(60)
    ]
    rig.messages.stored["c-1"] = turns
    response = await rig.get("/playground/conversations/c-1/messages")
    assert response.status_code == 200
    assert response.json() == {"conversation_id": "c-1", "messages": turns[-50:]}
    assert rig.messages.flushes == 1
    few = await rig.get("/playground/conversations/c-1/messages?limit=2")
    assert few.json()["messages"] == turns[-2:]
    assert (await rig.get("/playground/conversations/none/messages")).json()["messages"] == []
    for bad in ("0", "51", "x"):
        response = await rig.get(f"/playground/conversations/c-1/messages?limit={bad}")
        assert response.status_code == 400 and "limit" in response.json()["error"]
    rig.messages.stopped = True
    assert (await rig.get("/playground/conversations/c-1/messages")).status_code == 503


def test_an_unbuilt_page_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="scripts/build-playground.sh"):
        Playground(
            PlaygroundSettings(enabled=True),
            livekit_url=LIVEKIT_URL,
            api_key=KEY,
            api_secret=SECRET,
            rooms=FakeRooms(),
            messages=FakeMessages(),
            wants_room=lambda _room: True,
            static_dir=tmp_path,
        )


def test_the_committed_build_matches_its_sources() -> None:
    """scripts/build-playground.sh writes this stamp; editing playground/ without a build, or
    the built files by hand, fails here (``scripts/build-playground.sh --check`` proves that a
    fresh build gives the same bytes)."""
    sources = ROOT / "playground"
    paths = [sources / name for name in ("package.json", "package-lock.json", "tsconfig.json")]
    paths += [sources / "build.mjs", *(p for p in (sources / "src").rglob("*") if p.is_file())]
    paths += [p for p in STATIC_DIR.iterdir() if p.is_file() and p.name != "SOURCES.sha256"]
    names = sorted(p.relative_to(ROOT).as_posix() for p in paths)
    listing = "".join(
        f"{hashlib.sha256((ROOT / name).read_bytes()).hexdigest()}  {name}\n" for name in names
    )
    stamp = (STATIC_DIR / "SOURCES.sha256").read_text()
    assert listing == stamp, "the playground's build is stale: run scripts/build-playground.sh"
