"""Tools over HTTP: the backend's ``GET /v1/tools`` and ``POST /v1/tools/{name}:invoke``.

This is the one place where httpx errors and HTTP statuses of tool endpoints become
``ToolError``s. A call carries an ``Idempotency-Key`` (the call's id, the same on every
attempt); it is retried (tenacity, short backoff with jitter) only when the tool is idempotent
and the failure may pass (a timeout, a lost connection, 408, 429, 5xx). The result is read up to
``max_result_kb``. The backend token goes only to URLs under the backend's own. Nothing here
logs arguments or results.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import anyio
import httpx
from pydantic import SecretStr
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from actors._exceptions import ToolError
from actors.providers import ToolDefinition
from actors.tools._model import ToolContext, ToolOutcome, ToolSpec
from actors.tools._settings import NAME_PATTERN, ToolCallSettings, check_schema

__all__ = ("ToolHttp", "result_text")

logger = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({408, 425, 429})
_LIST_TIMEOUT_S = 5.0
_CLOSE_BOUND_S = 2.0  # closing the pool ends its connections politely, not at any cost
_NAME = re.compile(NAME_PATTERN)


def result_text(result: Any) -> str:
    """A tool's result as the model reads it: text as it is, anything else as compact JSON."""
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, ToolError) and error.retryable


class ToolHttp:
    """The HTTP side of tools: one client for every tool endpoint of a process.

    Args:
        settings: ``[tool_calls]``.
        backend_url: ``[persistence] backend_url`` (None: no backend tools, and declared tools
            need their own ``url``).
        token: the backend's bearer token (sent to backend URLs only).
        sleep: how to wait between attempts (tests pass their own).
    """

    def __init__(
        self,
        settings: ToolCallSettings,
        backend_url: str | None,
        token: SecretStr | None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._settings = settings
        self._backend = backend_url.rstrip("/") if backend_url else None
        self._auth = (
            {} if token is None else {"authorization": "Bearer " + token.get_secret_value()}
        )
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            headers={"accept": "application/json"},
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )

    def url_of(self, spec: ToolSpec) -> str:
        """Where ``spec`` is invoked.

        Raises:
            ToolError: it names no URL and there is no backend.
        """
        if spec.url is not None:
            return spec.url
        if self._backend is None:
            raise ToolError(
                "a tool without url needs [persistence] backend_url", code="unavailable"
            )
        return f"{self._backend}/v1/tools/{quote(spec.name, safe='')}:invoke"

    async def list_backend(self) -> list[ToolSpec]:
        """The backend's tools (``GET /v1/tools``); malformed entries are left out and logged.

        Raises:
            ToolError: the backend could not be read (the caller keeps its last list).
        """
        if self._backend is None:
            return []
        body = await self._request("GET", f"{self._backend}/v1/tools", None, {}, _LIST_TIMEOUT_S)
        entries = body.get("tools") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise ToolError("the backend's tool list has no 'tools' array", code="refused")
        specs = []
        for entry in entries:
            spec = _backend_spec(entry)
            if spec is None:
                name = entry.get("name") if isinstance(entry, dict) else None
                logger.warning("backend tool left out: malformed", extra={"tool": str(name)})
            else:
                specs.append(spec)
        return specs

    async def invoke(
        self, spec: ToolSpec, arguments: dict[str, Any], context: ToolContext, call_id: str
    ) -> ToolOutcome:
        """Run ``spec`` with ``arguments`` at its endpoint.

        Raises:
            ToolError: every attempt failed (the last one's error).
        """
        url = self.url_of(spec)
        body = {
            "call_id": call_id,
            "arguments": arguments,
            "conversation_id": context.conversation_id,
            "room": context.room,
            "caller": context.caller,
            "caller_role": context.caller_role,
        }
        headers = {"idempotency-key": call_id}
        attempts = 1 + (self._settings.retries if spec.idempotent else 0)
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(attempts),
            wait=wait_exponential_jitter(multiplier=0.1, max=1.0),
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                answer = await self._request("POST", url, body, headers, spec.timeout_s)
                number = attempt.retry_state.attempt_number
                if not isinstance(answer, dict) or "result" not in answer:
                    raise ToolError("the tool's answer has no 'result'", code="refused")
                return ToolOutcome(result_text(answer["result"]), attempts=number)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _request(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        headers: dict[str, str],
        timeout_s: float,
    ) -> Any:
        if self._backend is not None and (
            url == self._backend or url.startswith(self._backend + "/")
        ):
            headers = {**headers, **self._auth}
        cap = self._settings.max_result_kb * 1024
        try:
            with anyio.fail_after(timeout_s):
                async with self._http.stream(
                    method, url, json=body, headers=headers, timeout=timeout_s
                ) as response:
                    raw = bytearray()
                    async for chunk in response.aiter_bytes():
                        raw += chunk
                        if len(raw) > cap:
                            raise ToolError(
                                "the tool's result is larger than [tool_calls] max_result_kb",
                                code="too_large",
                            )
        except TimeoutError:
            raise ToolError(
                "the tool did not answer in time", code="timeout", retryable=True
            ) from None
        except httpx.TimeoutException as exc:
            raise ToolError(
                "the tool did not answer in time", code="timeout", retryable=True
            ) from exc
        except httpx.HTTPError as exc:
            raise ToolError("the tool is unreachable", code="unavailable", retryable=True) from exc
        status = response.status_code
        if not 200 <= status < 300:
            retryable = status >= 500 or status in _RETRY_STATUSES
            code = "unavailable" if retryable else "refused"
            raise ToolError(f"the tool answered HTTP {status}", code=code, retryable=retryable)
        try:
            return json.loads(raw)
        except ValueError:
            raise ToolError("the tool's answer is not JSON", code="refused") from None

    async def aclose(self) -> None:
        with anyio.move_on_after(_CLOSE_BOUND_S, shield=True):
            await self._http.aclose()


def _backend_spec(entry: Any) -> ToolSpec | None:
    if not isinstance(entry, dict):
        return None
    name, description = entry.get("name"), entry.get("description")
    parameters = entry.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(name, str) or not _NAME.match(name) or not isinstance(description, str):
        return None
    if not isinstance(parameters, dict):
        return None
    try:
        check_schema(parameters)
    except ValueError:
        return None
    timeout = entry.get("timeout_s", 5.0)
    if not isinstance(timeout, int | float) or not 0 < timeout <= 120:
        return None
    return ToolSpec(
        ToolDefinition(name, description, parameters),
        "backend",
        idempotent=entry.get("idempotent") is True,
        timeout_s=float(timeout),
    )
