"""The playground's HTTP routes: the page, a token endpoint, and the stored messages.

- ``GET /playground``: the page (built from ``playground/`` into ``static/``, see
  ``scripts/build-playground.sh``); ``GET /playground/static/{name}``: its script and styles.
- ``POST /playground/token``: creates a room (metadata ``{conversation_id, user_id}``) through
  the room service API and answers ``{url, token, room, identity, conversation_id, user_id}``.
  The user id is the browser session's (a cookie), never the client's choice; a given
  ``conversation_id`` must be one this playground opened.
- ``GET /playground/conversations/{id}/messages``: the stored messages of a conversation this
  playground opened (404 for any other).

For development only, and on loopback unless ``allow_remote`` (see ``_access.py``): a request
with a foreign ``Host`` gets 421, a token request from a foreign ``Origin`` 403.
This module never logs transcripts, names or identities.
"""

from __future__ import annotations

import datetime
import json
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from livekit import api
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actors import ConfigError, PersistenceError
from supervisor._exposure import playground_problem
from supervisor.playground._access import SESSION_COOKIE, Access, Conversations
from supervisor.playground._settings import PlaygroundSettings

__all__ = ("STATIC_DIR", "MessageSource", "Playground")

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
_PAGE = "index.html"
_NO_STORE = {"Cache-Control": "no-store"}
_REVALIDATE = {"Cache-Control": "no-cache"}

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MessageSource(Protocol):
    """Where stored messages come from (the persistence actor)."""

    async def flush(self) -> None: ...
    async def recent_messages(self, conversation_id: str, limit: int) -> list[dict[str, Any]]: ...


class RoomCreator(Protocol):
    async def create_room(self, create: api.CreateRoomRequest) -> api.Room: ...


class _TokenRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="", max_length=64)
    conversation_id: str = Field(default="", max_length=128, pattern=r"^[A-Za-z0-9_.:-]*$")
    user_id: str = Field(default="", max_length=128)
    """Accepted for older pages and ignored: the session decides the user id."""


class Playground:
    """The playground's routes; ``routes()`` goes to the daemon's aiohttp application.

    Args:
        settings: ``[playground]``.
        server_host: ``[server] host`` (loopback unless ``allow_remote``).
        server_port: ``[server] port``; the allowed origins use it.
        livekit_url: the LiveKit URL the browser connects to.
        api_key: signs the participant tokens.
        api_secret: signs the participant tokens.
        rooms: the room service (``LiveKitAPI.room``).
        messages: the stored conversations (the persistence actor).
        wants_room: ``[agent] rooms`` rules, read at each request (SIGHUP may change them).
        role_attribute: the ``[data] role_attribute`` its tokens carry ``[playground] role`` in.
        static_dir: the built page.

    Raises:
        ConfigError: the page has not been built, or ``server_host`` is not loopback and
            ``allow_remote`` is off.
    """

    def __init__(
        self,
        settings: PlaygroundSettings,
        *,
        server_host: str,
        server_port: int,
        livekit_url: str,
        api_key: str,
        api_secret: str,
        rooms: RoomCreator,
        messages: MessageSource,
        wants_room: Callable[[str], bool],
        role_attribute: str = "agent.role",
        static_dir: Path = STATIC_DIR,
    ) -> None:
        problem = playground_problem(settings, server_host)
        if problem is not None:
            raise ConfigError(problem)
        if not (static_dir / _PAGE).is_file():
            raise ConfigError(
                "[playground] enabled = true, but the page is not built: "
                "run scripts/build-playground.sh"
            )
        self._settings = settings
        self._url = livekit_url
        self._key = api_key
        self._secret = api_secret
        self._rooms = rooms
        self._messages = messages
        self._wants_room = wants_room
        self._attributes = {role_attribute: settings.role} if settings.role else {}
        self._static_dir = static_dir
        self._files = {p.name: p for p in static_dir.iterdir() if p.is_file()}
        self._access = Access(settings, host=server_host, port=server_port)
        self._conversations = Conversations(settings.conversations_kept)
        if settings.allow_remote:
            logger.warning(
                "playground answers any Host ([playground] allow_remote = true): "
                "whoever reaches the port can open rooms and read their conversations",
                extra={"host": server_host, "port": server_port},
            )

    def routes(self) -> list[web.RouteDef]:
        guard = self._guarded
        return [
            web.get("/playground", guard(self._page)),
            web.get("/playground/", guard(self._page)),
            web.get("/playground/static/{name}", guard(self._static)),
            web.post("/playground/token", guard(self._token)),
            web.get("/playground/conversations/{conversation_id}/messages", guard(self._stored)),
        ]

    def _guarded(self, handler: _Handler) -> _Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            # 421 Misdirected Request: this server does not serve that authority (a rebinding
            # page's name, or any name other than loopback's).
            if not self._access.host_allowed(request):
                return _error(421, "the playground answers only on 127.0.0.1, ::1 or localhost")
            return await handler(request)

        return guarded

    async def _page(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(self._static_dir / _PAGE, headers=_REVALIDATE)

    async def _static(self, request: web.Request) -> web.StreamResponse:
        path = self._files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers=_REVALIDATE)

    async def _token(self, request: web.Request) -> web.Response:
        if not self._access.origin_allowed(request):
            return _error(403, "cross-origin token requests are refused")
        if request.content_type != "application/json":
            return _error(415, "send a JSON body (Content-Type: application/json)")
        try:
            raw = await request.read()
            body = _TokenRequest.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            return _error(400, f"invalid token request: {problems}")
        room = self._settings.room_prefix + secrets.token_hex(4)
        if not self._wants_room(room):
            return _error(
                409,
                f"the agent does not join rooms named {self._settings.room_prefix}*: "
                "change [agent] rooms or [playground] room_prefix",
            )
        if body.conversation_id and body.conversation_id not in self._conversations:
            return _error(404, "unknown conversation: the playground resumes only its own")
        conversation_id = body.conversation_id or f"pg_{uuid.uuid4().hex}"
        session = self._access.session_of(request) or self._access.new_session()
        user_id = self._access.user_id(session)
        metadata = json.dumps({"conversation_id": conversation_id, "user_id": user_id})
        try:
            await self._rooms.create_room(api.CreateRoomRequest(name=room, metadata=metadata))
        except (api.TwirpError, aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("playground could not create a room", extra={"error": repr(exc)})
            return _error(502, f"the LiveKit server refused to create a room: {exc}")
        identity = f"user-{secrets.token_hex(3)}"
        token = (
            api.AccessToken(self._key, self._secret)
            .with_identity(identity)
            .with_name(body.name or "Playground user")
            .with_attributes(self._attributes)
            .with_grants(
                api.VideoGrants(
                    room_join=True,
                    room=room,
                    can_publish=True,
                    can_subscribe=True,
                    can_publish_data=True,
                )
            )
            .with_ttl(datetime.timedelta(seconds=self._settings.token_ttl_s))
            .to_jwt()
        )
        self._conversations.add(conversation_id)
        logger.info("playground room opened")
        response = web.json_response(
            {
                "url": self._url,
                "token": token,
                "room": room,
                "identity": identity,
                "conversation_id": conversation_id,
                "user_id": user_id,
            },
            headers=_NO_STORE,
        )
        response.set_cookie(
            SESSION_COOKIE, session, path="/playground", httponly=True, samesite="Strict"
        )
        return response

    async def _stored(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversation_id"]
        if conversation_id not in self._conversations:
            return _error(404, "unknown conversation: the playground lists only its own")
        most = self._settings.messages_limit
        try:
            limit = int(request.query.get("limit", most))
        except ValueError:
            return _error(400, "limit must be an integer")
        if not 1 <= limit <= most:
            return _error(400, f"limit must be between 1 and {most}")
        try:
            await self._messages.flush()  # turns emitted before this request are readable
            messages = await self._messages.recent_messages(conversation_id, limit)
        except PersistenceError as exc:
            return _error(503, f"stored messages are unavailable: {exc}")
        return web.json_response(
            {"conversation_id": conversation_id, "messages": messages}, headers=_NO_STORE
        )


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=_NO_STORE)
