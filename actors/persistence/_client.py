"""The backend client: the contract's three requests over one ``httpx.AsyncClient``.

This is the one place where httpx errors and HTTP statuses become ours (``_translate`` and
``_check``): nothing above it names an httpx exception. It never retries (the shipper owns the
retry policy) and never logs bodies.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from actors._exceptions import BackendRejected
from actors.persistence._errors import BackendUnavailable, EventRejected
from actors.persistence._settings import PersistenceSettings

__all__ = ("BackendClient", "BatchResult", "build_http_client", "probe_backend")

# Statuses a later attempt may not meet again: overload and conflicts, plus deployment problems
# (a wrong token or URL). Dead-lettering on those would empty the outbox into the dead-letter
# table because of one bad setting; retrying keeps every event until the setting is fixed.
_RETRY_STATUSES = frozenset({401, 403, 404, 405, 408, 409, 425, 429})
_REASON_MAX = 500
_BATCH_PATH = "/v1/events:batch"


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The backend's answer to a batch: events it stored now and ids it had already."""

    accepted: int
    duplicates: int


def build_http_client(settings: PersistenceSettings) -> httpx.AsyncClient:
    """An HTTP client for ``settings.backend_url`` with the bearer token and timeouts."""
    if settings.backend_url is None:
        raise ValueError("build_http_client needs [persistence] backend_url")
    headers = {"accept": "application/json"}
    if settings.backend_token is not None:
        headers["authorization"] = "Bearer " + settings.backend_token.get_secret_value()
    return httpx.AsyncClient(
        base_url=settings.backend_url.rstrip("/"),
        headers=headers,
        timeout=settings.request_timeout_s,
        # One batch is in flight at a time; lookups from room actors run beside it.
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
    )


class BackendClient:
    """The contract's requests; errors come out as ``PersistenceError`` subclasses.

    Args:
        http: the client (``build_http_client``); its owner closes it.
    """

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def post_batch(self, body: bytes, ids: frozenset[str] | None = None) -> BatchResult:
        """``POST /v1/events:batch`` with a ready JSON body.

        Args:
            body: ``{"events": [...]}`` as bytes.
            ids: the batch's event ids, to recognise a refusal that names one of them.

        Raises:
            BackendUnavailable: retry later.
            EventRejected: a final refusal naming one event of ``ids``.
            BackendRejected: a final refusal of the whole request.
        """
        with _translate("sending a batch of events"):
            response = await self._http.post(
                _BATCH_PATH, content=body, headers={"content-type": "application/json"}
            )
        _check(response, "sending a batch of events", ids)
        payload = _json(response)
        accepted = payload.get("accepted", 0) if isinstance(payload, dict) else 0
        duplicates = payload.get("duplicates", 0) if isinstance(payload, dict) else 0
        return BatchResult(int(accepted), int(duplicates))

    async def agent_joined(self, room: str, metadata: dict[str, Any], timeout_s: float) -> str:
        """``POST /v1/rooms/{room}/agent-joined``: the conversation id for a room.

        Raises:
            PersistenceError: any failure, including an answer without a conversation id.
        """
        what = "asking the backend for a conversation id"
        with _translate(what):
            response = await self._http.post(
                f"/v1/rooms/{quote(room, safe='')}/agent-joined",
                json={"metadata": metadata},
                timeout=timeout_s,
            )
        _check(response, what, None)
        payload = _json(response)
        cid = payload.get("conversation_id") if isinstance(payload, dict) else None
        if not isinstance(cid, str) or not cid:
            raise BackendRejected(
                "the backend's agent-joined answer has no conversation_id",
                status=response.status_code,
                reason="conversation_id missing",
            )
        return cid

    async def recent_messages(
        self, conversation_id: str, limit: int, timeout_s: float
    ) -> list[dict[str, Any]]:
        """``GET /v1/conversations/{id}/messages?limit=N``, oldest first (404: none).

        Raises:
            PersistenceError: any failure, including a malformed answer.
        """
        what = "reading a conversation's recent messages"
        with _translate(what):
            response = await self._http.get(
                f"/v1/conversations/{quote(conversation_id, safe='')}/messages",
                params={"limit": limit},
                timeout=timeout_s,
            )
        if response.status_code == 404:
            return []
        _check(response, what, None)
        payload = _json(response)
        messages = payload.get("messages") if isinstance(payload, dict) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise BackendRejected(
                "the backend's messages answer has no message list",
                status=response.status_code,
                reason="messages missing",
            )
        return [
            {
                "role": str(m.get("role", "")),
                "content": str(m.get("content", "")),
                "ts": float(m.get("ts", 0.0)),
                "speaker": m.get("speaker"),
                "interrupted": bool(m.get("interrupted", False)),
                # A tool call's or result's: which tool, and which call a result answers.
                **{k: str(m[k]) for k in ("name", "tool_call_id") if m.get(k) is not None},
            }
            for m in messages
        ]


async def probe_backend(settings: PersistenceSettings) -> None:
    """Send the backend an empty batch (``{"events": []}``), as ``check-config --connect``
    does: the URL, the token and the batch route are tried, and nothing is stored.

    Raises:
        PersistenceError: it did not answer ``200 {"accepted": 0}``; the message names the
            setting to check.
    """
    what = "an empty batch of events"
    async with build_http_client(settings) as http:
        with _translate(what):
            response = await http.post(
                _BATCH_PATH, content=b'{"events": []}', headers={"content-type": "application/json"}
            )
    _check(response, what, None)
    payload = _json(response)
    if not isinstance(payload, dict) or not isinstance(payload.get("accepted"), int):
        raise BackendRejected(
            f'{what}: the answer is not the contract\'s {{"accepted": n}} (is '
            "[persistence] backend_url the backend, and not a proxy's page?)",
            status=response.status_code,
            reason="accepted missing",
        )


@contextmanager
def _translate(what: str) -> Iterator[None]:
    """httpx's transport errors as ``BackendUnavailable``."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise BackendUnavailable(
            f"{what} timed out; check the backend or [persistence] request_timeout_s",
            kind="timeout",
        ) from exc
    except httpx.TransportError as exc:
        raise BackendUnavailable(
            f"{what} failed: the backend is unreachable; check [persistence] backend_url",
            kind="connection",
        ) from exc
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"{what} failed", kind="connection") from exc


def _check(response: httpx.Response, what: str, ids: frozenset[str] | None) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status >= 500 or status in _RETRY_STATUSES:
        hint = {
            401: "; check BACKEND_TOKEN",
            403: "; check BACKEND_TOKEN",
            404: "; check [persistence] backend_url",
            405: "; check [persistence] backend_url",
        }.get(status, "")
        raise BackendUnavailable(
            f"{what}: the backend answered {status}{hint}",
            kind="status",
            status=status,
            retry_after=_retry_after(response.headers.get("retry-after")),
        )
    payload = _json(response)
    reason = response.text[:_REASON_MAX]
    if isinstance(payload, dict):
        if isinstance(payload.get("error"), str):
            reason = payload["error"][:_REASON_MAX]
        event_id = payload.get("event_id")
        if ids is not None and isinstance(event_id, str) and event_id in ids:
            raise EventRejected(
                f"{what}: the backend refused one event ({status})",
                status=status,
                reason=reason,
                event_id=event_id,
            )
    raise BackendRejected(
        f"{what}: the backend refused it ({status})", status=status, reason=reason
    )


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
