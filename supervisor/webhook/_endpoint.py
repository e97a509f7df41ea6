"""``POST /webhook``: verify, de-duplicate and hand LiveKit's events to the supervisor.

Answers at once and never waits for the supervisor: 401 on a bad or missing signature,
413 on an oversized body, 400 on a malformed one, 503 with Retry-After when the supervisor's
mailbox is full or the daemon is draining, 200 otherwise (unknown event types included).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
from aiohttp import web
from anyio.streams.memory import MemoryObjectSendStream
from google.protobuf.json_format import ParseError
from livekit import api

from supervisor._messages import ParticipantJoined, RoomFinished, RoomStarted, SupervisorMessage
from supervisor._metrics import WEBHOOKS
from supervisor.webhook._dedupe import RecentIds

__all__ = ("WebhookEndpoint",)

logger = logging.getLogger(__name__)

_RETRY_AFTER_S = "1"


class WebhookEndpoint:
    """The aiohttp handler for LiveKit webhooks.

    Args:
        receiver: livekit-api's verifier, built with the daemon's API key and secret.
        mailbox: the supervisor's mailbox (bounded).
        dedupe_size: how many event ids to remember.
        max_body_bytes: larger bodies are refused with 413.
        now: wall clock, stamped on messages to measure webhook → joined latency.
        accepting: returns False while the daemon drains.
    """

    def __init__(
        self,
        receiver: api.WebhookReceiver,
        mailbox: MemoryObjectSendStream[SupervisorMessage],
        *,
        dedupe_size: int,
        max_body_bytes: int,
        now: Callable[[], float],
        accepting: Callable[[], bool],
    ) -> None:
        self._receiver = receiver
        self._mailbox = mailbox
        self._seen = RecentIds(dedupe_size)
        self._max_body = max_body_bytes
        self._now = now
        self._accepting = accepting

    async def handle(self, request: web.Request) -> web.Response:
        received_at = self._now()
        if request.content_length is not None and request.content_length > self._max_body:
            return _answer("too_large", 413, "webhook body too large; raise [server] max_body_kb")
        try:
            raw = await request.content.read(self._max_body + 1)
        except (OSError, ValueError):
            return _answer("malformed", 400, "could not read the webhook body")
        if len(raw) > self._max_body:
            return _answer("too_large", 413, "webhook body too large; raise [server] max_body_kb")
        token = request.headers.get("Authorization", "")
        if not token:
            return _answer("unauthorized", 401, "missing Authorization header")
        if token.lower().startswith("bearer "):
            token = token[7:]
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _answer("malformed", 400, "webhook body is not UTF-8")
        try:
            event = self._receiver.receive(body, token)
        except ParseError:
            return _answer("malformed", 400, "webhook body is not a LiveKit WebhookEvent")
        except Exception:  # PyJWT errors, "hash mismatch", "sha256 was not found": all auth
            return _answer(
                "unauthorized", 401, "webhook signature invalid; check [livekit] api_key/api_secret"
            )
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


def _to_message(event: api.WebhookEvent, received_at: float) -> SupervisorMessage | None:
    room = event.room.name if event.HasField("room") else ""
    sid = event.room.sid if event.HasField("room") else ""
    if not room:
        return None
    match event.event:
        case "room_started":
            return RoomStarted(room, sid, received_at)
        case "room_finished":
            return RoomFinished(room, sid)
        case "participant_joined" if event.HasField("participant"):
            return ParticipantJoined(room, sid, event.participant.identity, received_at)
        case _:
            return None


def _answer(result: str, status: int, text: str, *, retry: bool = False) -> web.Response:
    WEBHOOKS.labels(result=result).inc()
    if status >= 400 and status != 503:
        logger.info("webhook refused", extra={"result": result, "status": status})
    headers = {"Retry-After": _RETRY_AFTER_S} if retry else None
    return web.Response(status=status, text=text + "\n", headers=headers)
