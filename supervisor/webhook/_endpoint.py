"""``POST /webhook``: verify, de-duplicate and hand LiveKit's events to the supervisor.

Answers at once and never waits for the supervisor: 401 on a bad or missing signature,
413 on an oversized body, 408 on a body that does not arrive within ``body_timeout_s``, 400 on
a malformed one, 503 with Retry-After when the supervisor's mailbox is full or the daemon is
draining, 200 otherwise (unknown event types included).

Verification is LiveKit's (see ``_token.py``): the ``Authorization`` header carries a JWT signed
(HS256) with the API secret, issued by the API key, unexpired, whose ``sha256`` claim is the
base64 SHA-256 of the exact body bytes. Cheap checks run first (header present and JWT-shaped,
declared size), then the token (signature, header, issuer, expiry), all before a byte of the
body is read: an unsigned request is answered 401 at once, however slowly its body comes. Only
then is the body read, in full (a body split across TCP segments is still one body), up to
``max_body_bytes`` and within ``body_timeout_s``; then its hash is compared with the token's,
and only an authentic body is parsed.

A request refused before its body was read in full is answered at once and its connection is
closed, after reading and discarding what still comes of the body for at most
``body_timeout_s`` (so an honest client still sending gets the answer, not a reset): a client
sending slowly, signed or not, holds a connection no longer than that.

Only the fields the supervisor uses are read from the body (``event``, ``id``, ``room.name``,
``room.sid``, ``participant.identity``): a body that is not a JSON object, or where one of
those has the wrong type, is malformed (400); every other field is ignored, as LiveKit adds
fields over time. It never raises into aiohttp (no 500) and holds no per-request state beyond
the bounded id memory and the bounded mailbox.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from anyio.streams.memory import MemoryObjectSendStream

from supervisor._messages import ParticipantJoined, RoomFinished, RoomStarted, SupervisorMessage
from supervisor._metrics import WEBHOOKS
from supervisor.webhook._dedupe import RecentIds
from supervisor.webhook._token import WebhookVerifier

__all__ = ("WebhookEndpoint",)

logger = logging.getLogger(__name__)

_RETRY_AFTER_S = "1"
_MAX_TOKEN_CHARS = 8192
"""LiveKit's webhook tokens are a few hundred characters; longer ones are not even decoded."""
_REFUSAL_LOG_INTERVAL_S = 10.0
"""At most one "webhook refused" line per result and interval, so a flood cannot flood logs."""
_RESULTS = (
    "accepted",
    "duplicate",
    "ignored",
    "unauthorized",
    "malformed",
    "too_large",
    "timeout",
    "saturated",
    "draining",
)
_COUNTERS = {result: WEBHOOKS.labels(result=result) for result in _RESULTS}


_INTEGER = re.compile(r"-?[0-9]{1,19}")
"""What protobuf JSON writes for an int64 (``int()`` would also take "1_000", " 1" or "²")."""


class WebhookEndpoint:
    """The aiohttp handler for LiveKit webhooks.

    Args:
        verifier: checks the signature, built with the daemon's API key and secret.
        mailbox: the supervisor's mailbox (bounded).
        dedupe_size: how many event ids to remember.
        max_body_bytes: larger bodies are refused with 413.
        body_timeout_s: a body not in full within this (after the header checks) gets 408.
        now: wall clock, stamped on messages to measure webhook → joined latency.
        accepting: returns False while the daemon drains.
    """

    def __init__(
        self,
        verifier: WebhookVerifier,
        mailbox: MemoryObjectSendStream[SupervisorMessage],
        *,
        dedupe_size: int,
        max_body_bytes: int,
        body_timeout_s: float,
        now: Callable[[], float],
        accepting: Callable[[], bool],
    ) -> None:
        self._verifier = verifier
        self._mailbox = mailbox
        self._seen = RecentIds(dedupe_size)
        self._max_body = max_body_bytes
        self._body_timeout_s = body_timeout_s
        self._now = now
        self._accepting = accepting
        self._refusals_logged_at: dict[str, float] = {}
        self._refusals_unlogged: dict[str, int] = {}

    @property
    def remembered_ids(self) -> int:
        """How many event ids the de-duplication memory holds (at most ``dedupe_size``)."""
        return len(self._seen)

    async def handle(self, request: web.Request) -> web.Response:
        received_at = self._now()
        if request.content_length is not None and request.content_length > self._max_body:
            return await self._refuse_unread(request, "too_large", 413, _TOO_LARGE)
        token = request.headers.get("Authorization", "")
        if token[:7].lower() == "bearer ":
            token = token[7:]
        if not token:
            return await self._refuse_unread(
                request, "unauthorized", 401, "missing Authorization header"
            )
        claims = None
        if len(token) <= _MAX_TOKEN_CHARS and token.count(".") == 2 and token.isascii():
            claims = self._verifier.claims(token)
        if claims is None:
            return await self._refuse_unread(request, "unauthorized", 401, _BAD_SIGNATURE)
        try:
            with anyio.fail_after(self._body_timeout_s):
                raw = await self._read_body(request)
        except TimeoutError:
            return await self._refuse_unread(request, "timeout", 408, _SLOW_BODY, linger=False)
        except (OSError, ValueError, EOFError, HttpProcessingError):
            return self._refuse("malformed", 400, "could not read the webhook body")
        if raw is None:
            return await self._refuse_unread(request, "too_large", 413, _TOO_LARGE)
        if not self._verifier.body_matches(claims, raw):
            return self._refuse("unauthorized", 401, _BAD_SIGNATURE)
        try:
            event = _parse(raw)
        except (ValueError, RecursionError):
            return self._refuse("malformed", 400, "webhook body is not a LiveKit WebhookEvent")
        if not self._accepting():
            return _answer("draining", 503, "daemon is draining", retry=True)
        message = _to_message(event, received_at)
        if message is None:
            return _answer("ignored", 200, "ok")
        if event.id and not self._seen.add(event.id):
            return _answer("duplicate", 200, "duplicate event ignored")
        try:
            self._mailbox.send_nowait(message)
        except anyio.WouldBlock:
            if event.id:
                self._seen.forget(event.id)
            return _answer("saturated", 503, "supervisor busy; retry later", retry=True)
        return _answer("accepted", 200, "ok")

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The whole body, or None once it exceeds ``max_body_bytes``.

        Raises:
            EOFError: the client closed the connection before its Content-Length was sent.
        """
        if request.content_length is not None:  # checked against max_body_bytes already
            return await request.content.readexactly(request.content_length)
        body = bytearray()
        while len(body) <= self._max_body:
            # read(n) returns what has arrived (up to n bytes), not necessarily the whole body.
            chunk = await request.content.read(self._max_body + 1 - len(body))
            if not chunk:
                return bytes(body)
            body += chunk
        return None

    async def _refuse_unread(
        self, request: web.Request, result: str, status: int, text: str, *, linger: bool = True
    ) -> web.Response:
        """Refuse a request whose body may not have arrived in full, and close its connection.

        The answer is sent now. With ``linger``, what still comes of the body is then read and
        discarded for at most ``body_timeout_s`` (a client still sending would otherwise get a
        reset instead of the answer); the connection is closed after that in any case.
        aiohttp's own lingering would keep it for 10 s, whatever the body timeout.
        """
        response = self._refuse(result, status, text)
        response.force_close()  # "Connection: close": this connection serves nothing more
        if request.content.is_eof():
            return response  # the whole body is here: aiohttp closes after answering
        try:
            await response.prepare(request)
            await response.write_eof()
            if linger:
                with anyio.move_on_after(self._body_timeout_s):
                    discarded = 0
                    while discarded <= self._max_body and not request.content.is_eof():
                        discarded += len(await request.content.readany())
        except (OSError, ValueError, EOFError, HttpProcessingError):
            pass  # the client went away: nothing left to answer
        if not request.content.is_eof():
            request.protocol.force_close()
        return response

    def _refuse(self, result: str, status: int, text: str) -> web.Response:
        now = self._now()
        last = self._refusals_logged_at.get(result)
        if last is None or now - last >= _REFUSAL_LOG_INTERVAL_S or now < last:
            unlogged = self._refusals_unlogged.pop(result, 0)
            self._refusals_logged_at[result] = now
            logger.info(
                "webhook refused",
                extra={"result": result, "status": status, "similar_unlogged": unlogged},
            )
        else:
            self._refusals_unlogged[result] = self._refusals_unlogged.get(result, 0) + 1
        return _answer(result, status, text)


_BAD_SIGNATURE = "webhook signature invalid; check [livekit] api_key/api_secret"
_TOO_LARGE = "webhook body too large; raise [server] max_body_kb"
_SLOW_BODY = "webhook body did not arrive in time; see [server] body_timeout_s"


@dataclass(frozen=True, slots=True)
class _Event:
    kind: str
    id: str
    room: str
    sid: str
    identity: str | None
    """None when the event carries no participant."""
    metadata: str
    """The room's metadata ("" when absent): its ``agents`` pick the room's agents."""
    created_at: float | None
    """``createdAt`` in unix seconds; None if absent or not an integer."""


def _parse(raw: bytes) -> _Event:
    """The fields the supervisor uses, type-checked.

    Raises:
        ValueError: not UTF-8, not JSON, not an object, or a used field of the wrong type.
        RecursionError: JSON nested too deeply.
    """
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("a webhook body is a JSON object")
    room = _object(data, "room")
    participant = _object(data, "participant")
    return _Event(
        kind=_text(data, "event"),
        id=_text(data, "id"),
        room=_text(room, "name"),
        sid=_text(room, "sid"),
        metadata=_text(room, "metadata"),
        identity=None if participant is None else _text(participant, "identity"),
        created_at=_seconds(data, "createdAt"),
    )


def _seconds(data: dict[str, Any], key: str) -> float | None:
    """An integer field (protobuf JSON writes int64 as a string of ASCII digits); None when
    absent or not one, since only the event's age is judged from it and an unknown age is a
    fresh one."""
    value = data.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) < 10**19 else None  # float() overflows past ~1e308
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return float(int(value))
    return None


def _object(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise ValueError(f"{key} must be an object")


def _text(data: dict[str, Any] | None, key: str) -> str:
    value = None if data is None else data.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise ValueError(f"{key} must be a string")


def _to_message(event: _Event, received_at: float) -> SupervisorMessage | None:
    if not event.room:
        return None
    match event.kind:
        case "room_started":
            return RoomStarted(event.room, event.sid, received_at, event.created_at, event.metadata)
        case "room_finished":
            return RoomFinished(event.room, event.sid)
        case "participant_joined" if event.identity is not None:
            return ParticipantJoined(
                event.room, event.sid, event.identity, received_at, event.created_at, event.metadata
            )
        case _:
            return None


def _answer(result: str, status: int, text: str, *, retry: bool = False) -> web.Response:
    _COUNTERS[result].inc()
    headers = {"Retry-After": _RETRY_AFTER_S} if retry else None
    return web.Response(status=status, text=text + "\n", headers=headers)
