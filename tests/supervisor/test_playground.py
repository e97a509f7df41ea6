"""The playground's routes over real HTTP, with a fake room service and message source: what it
serves, and whom (Host and Origin checks, session user ids, only its own conversations); and
the committed build of the page matching its sources."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
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
    port: int
    rooms: FakeRooms
    messages: FakeMessages
    wanted: list[bool]
    client: httpx.AsyncClient  # one browser: it keeps the session cookie
    runner: web.AppRunner

    async def post_token(
        self,
        body: object = None,
        *,
        headers: dict[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        return await (client or self.client).post(
            self.url + "/playground/token",
            content=b"" if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    async def get(self, path: str, *, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.get(self.url + path, headers=headers)

    async def conversation(self) -> str:
        """A conversation the playground opened."""
        response = await self.post_token({})
        assert response.status_code == 200, response.text
        return str(response.json()["conversation_id"])


def playground(
    settings: PlaygroundSettings,
    rooms: FakeRooms,
    messages: FakeMessages,
    *,
    host: str = "127.0.0.1",
    port: int = 8089,
    wants_room: bool | list[bool] = True,
    static_dir: Path = STATIC_DIR,
) -> Playground:
    wanted = wants_room if isinstance(wants_room, list) else [wants_room]
    return Playground(
        settings,
        server_host=host,
        server_port=port,
        livekit_url=LIVEKIT_URL,
        api_key=KEY,
        api_secret=SECRET,
        rooms=rooms,
        messages=messages,
        wants_room=lambda _room: wanted[0],
        static_dir=static_dir,
    )


async def start_rig(settings: PlaygroundSettings, *, host: str = "127.0.0.1") -> Rig:
    """The playground on a loopback socket bound first, so its port is known when it is built
    (the Origin check is derived from it). ``host`` is what it is told ``[server] host`` is."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    rooms, messages, wanted = FakeRooms(), FakeMessages(), [True]
    app = web.Application()
    app.router.add_routes(
        playground(settings, rooms, messages, host=host, port=port, wants_room=wanted).routes()
    )
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    url = f"http://127.0.0.1:{port}"
    return Rig(url, port, rooms, messages, wanted, httpx.AsyncClient(), runner)


async def stop_rig(rig: Rig) -> None:
    await rig.client.aclose()
    await rig.runner.cleanup()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = await start_rig(PlaygroundSettings(enabled=True, messages_limit=50))
    try:
        yield rig
    finally:
        await stop_rig(rig)


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
    assert answer["conversation_id"].startswith("pg_")
    assert re.fullmatch(r"playground-[0-9a-f]{16}", answer["user_id"])
    (created,) = rig.rooms.created
    assert created.name == answer["room"]
    assert json.loads(created.metadata) == {
        "conversation_id": answer["conversation_id"],
        "user_id": answer["user_id"],
    }
    claims = api.TokenVerifier(KEY, SECRET).verify(answer["token"])
    assert claims.identity == answer["identity"] and claims.name == "Pat"
    assert claims.video is not None
    assert claims.video.room == answer["room"] and claims.video.room_join
    assert claims.video.can_publish and claims.video.can_subscribe and claims.video.can_publish_data
    assert not claims.video.room_admin and not claims.video.agent
    # An operator of its own room (the command form tries every command), unable to change it.
    assert claims.attributes == {"agent.role": "operator"}
    assert not claims.video.can_update_own_metadata
    cookie = response.headers["Set-Cookie"]
    assert "playground_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Path=/playground" in cookie


async def test_a_client_chosen_user_id_is_ignored(rig: Rig) -> None:
    """The user id belongs to the browser session: stable across its calls, never the one the
    client names, and another browser gets another."""
    first = (await rig.post_token({"user_id": "victim"})).json()
    again = (await rig.post_token({"user_id": "someone-else"})).json()
    assert first["user_id"] == again["user_id"] != "victim"
    async with httpx.AsyncClient() as other_browser:
        other = (await rig.post_token({"user_id": "victim"}, client=other_browser)).json()
    assert other["user_id"] not in ("victim", first["user_id"])
    users = {json.loads(c.metadata)["user_id"] for c in rig.rooms.created}
    assert users == {first["user_id"], other["user_id"]}
    # A forged cookie value gives a user id derived from it, not the value itself.
    rig.client.cookies.set("playground_session", "victim")
    forged = (await rig.post_token({})).json()
    assert forged["user_id"] not in ("victim", first["user_id"])


async def test_a_token_resumes_only_a_conversation_the_playground_opened(rig: Rig) -> None:
    conversation = await rig.conversation()
    resumed = await rig.post_token({"conversation_id": conversation})
    assert resumed.status_code == 200
    assert resumed.json()["conversation_id"] == conversation
    assert json.loads(rig.rooms.created[-1].metadata)["conversation_id"] == conversation
    foreign = await rig.post_token({"conversation_id": "c-someone-elses"})
    assert foreign.status_code == 404
    assert "unknown conversation" in foreign.json()["error"]
    assert len(rig.rooms.created) == 2


@pytest.mark.parametrize(
    ("body", "headers", "status", "error"),
    [
        ({"conversation_id": "no spaces"}, {}, 400, "conversation_id"),
        ({"room": "mine"}, {}, 400, "room: Extra inputs are not permitted"),
        ([1], {}, 400, "invalid token request"),
        ({}, {"Content-Type": "text/plain"}, 415, "JSON body"),
        ({}, {"Origin": "http://evil.example"}, 403, "cross-origin"),
        ({}, {"Origin": "null"}, 403, "cross-origin"),
    ],
)
async def test_bad_token_requests_are_refused(
    rig: Rig, body: object, headers: dict[str, str], status: int, error: str
) -> None:
    response = await rig.post_token(body, headers=headers)
    assert response.status_code == status
    assert error in response.json()["error"]
    assert rig.rooms.created == []


async def test_same_origin_requests_and_an_empty_body_are_fine(rig: Rig) -> None:
    for origin in (rig.url, f"http://localhost:{rig.port}", f"http://[::1]:{rig.port}"):
        response = await rig.post_token(headers={"Origin": origin})
        assert response.status_code == 200, origin


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "127.0.0.1.nip.io:{port}", "10.0.0.7:{port}"]
)
async def test_a_foreign_host_header_is_misdirected(rig: Rig, host: str) -> None:
    """421 on every route: a DNS-rebinding page reaches the port under its own name."""
    headers = {"Host": host.format(port=rig.port)}
    conversation = await rig.conversation()
    refused = [
        await rig.get("/playground", headers=headers),
        await rig.get("/playground/static/playground.js", headers=headers),
        await rig.post_token({}, headers=headers),
        await rig.get(f"/playground/conversations/{conversation}/messages", headers=headers),
    ]
    assert [r.status_code for r in refused] == [421] * 4
    assert "127.0.0.1, ::1 or localhost" in refused[2].json()["error"]
    assert len(rig.rooms.created) == 1


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LOCALHOST"]
)
async def test_loopback_host_names_are_answered(rig: Rig, host: str) -> None:
    page = await rig.get("/playground", headers={"Host": host.format(port=rig.port)})
    assert page.status_code == 200


async def test_an_origin_from_a_rebinding_host_is_refused() -> None:
    """With allow_remote any Host is answered, but the Origin check still compares with the
    configured address, so a page whose name was rebound to this host gets no token (the old
    check compared Origin with the request's own Host, which such a page controls)."""
    rig = await start_rig(PlaygroundSettings(enabled=True, allow_remote=True))
    try:
        rebound = f"rebind.example:{rig.port}"
        response = await rig.post_token(
            {}, headers={"Host": rebound, "Origin": f"http://{rebound}"}
        )
        assert response.status_code == 403
        assert rig.rooms.created == []
        assert (await rig.get("/playground", headers={"Host": rebound})).status_code == 200
    finally:
        await stop_rig(rig)


async def test_configured_origins_may_ask_for_tokens() -> None:
    settings = PlaygroundSettings(
        enabled=True, allow_remote=True, origins=("https://Dev.Example.org",)
    )
    rig = await start_rig(settings, host="0.0.0.0")
    try:
        allowed = await rig.post_token({}, headers={"Origin": "https://dev.example.org:443"})
        assert allowed.status_code == 200
        # The configured port, not the request's Host, decides which port an origin must have.
        other = await rig.post_token({}, headers={"Origin": "http://127.0.0.1:1"})
        assert other.status_code == 403
    finally:
        await stop_rig(rig)


def test_a_non_loopback_host_is_refused_without_allow_remote(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for host in ("0.0.0.0", "", "192.168.1.20", "::", "example.org"):
        with pytest.raises(ConfigError, match=r"\[playground\] allow_remote"):
            playground(PlaygroundSettings(enabled=True), FakeRooms(), FakeMessages(), host=host)
    with caplog.at_level(logging.WARNING, logger="supervisor.playground"):
        for _start in range(2):
            playground(
                PlaygroundSettings(enabled=True, allow_remote=True),
                FakeRooms(),
                FakeMessages(),
                host="0.0.0.0",
            )
    warned = [r for r in caplog.records if "allow_remote = true" in r.getMessage()]
    assert len(warned) == 2  # at every start


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
    conversation = await rig.conversation()
    path = f"/playground/conversations/{conversation}/messages"
    turns = [
        {"role": "user", "content": f"turn {i}", "ts": float(i), "speaker": "pat"}
        for i in range(60)
    ]
    rig.messages.stored[conversation] = turns
    response = await rig.get(path)
    assert response.status_code == 200
    assert response.json() == {"conversation_id": conversation, "messages": turns[-50:]}
    assert rig.messages.flushes == 1
    few = await rig.get(f"{path}?limit=2")
    assert few.json()["messages"] == turns[-2:]
    for bad in ("0", "51", "x"):
        response = await rig.get(f"{path}?limit={bad}")
        assert response.status_code == 400 and "limit" in response.json()["error"]
    rig.messages.stopped = True
    assert (await rig.get(path)).status_code == 503


async def test_messages_of_a_conversation_it_did_not_open_are_not_found(rig: Rig) -> None:
    rig.messages.stored["c-1"] = [{"role": "user", "content": "private", "ts": 1.0}]
    response = await rig.get("/playground/conversations/c-1/messages")
    assert response.status_code == 404
    assert "private" not in response.text and rig.messages.flushes == 0


async def test_only_the_latest_conversations_are_kept() -> None:
    rig = await start_rig(PlaygroundSettings(enabled=True, conversations_kept=2))
    try:
        first, second, third = [await rig.conversation() for _ in range(3)]
        statuses = [
            (await rig.get(f"/playground/conversations/{c}/messages")).status_code
            for c in (first, second, third)
        ]
        assert statuses == [404, 200, 200]
        assert (await rig.post_token({"conversation_id": first})).status_code == 404
    finally:
        await stop_rig(rig)


def test_an_unbuilt_page_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="scripts/build-playground.sh"):
        playground(
            PlaygroundSettings(enabled=True), FakeRooms(), FakeMessages(), static_dir=tmp_path
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
