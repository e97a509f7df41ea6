"""Cartesia streaming synthesis over its WebSocket, through the cartesia SDK 4.

Each ``synthesize()`` call is one Cartesia context (one ``context_id``) on a socket taken from a
small pool, so consecutive sentences skip the handshake. The call reads its socket itself with
``recv()`` instead of the SDK's background router: that router swallows a dropped connection
and would leave the reader waiting forever. Abandoning a reply (barge-in) sends the context's
cancel; leftovers of a cancelled context are skipped by id. An error event may carry no
``context_id`` at all (Cartesia sets it "when available"; a ``concurrency_limited`` 429 has
none): a socket has one request in flight at a time, so such an error is that request's, and it
fails at once (to the fallback chain) instead of waiting out ``timeout_s``. Cartesia closes
sockets idle for 5 minutes; the pool notices on the next send and opens a new one.
``_vendor_errors`` is the one place where SDK and websockets exceptions become
``ProviderError``s.

One context per sentence (``continue: false``), not one per turn with continuations: the
``TtsProvider`` seam takes a sentence at a time, and through the fake the first chunk of a
pooled socket's context came as fast either way (bench/providers.py: a median 1.5 ms per
sentence, 1.6 ms as a continuation); what a real context costs at Cartesia is not measured.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from typing import cast

import anyio
import websockets.exceptions
from cartesia import AsyncCartesia, CartesiaError
from cartesia.lib._tts import AsyncTTSResourceConnection
from cartesia.types import RawOutputFormatParam
from cartesia.types.generation_request_param import GenerationRequestParam
from cartesia.types.websocket_client_event_param import (
    CancelContextRequest,
    WebsocketClientEventParam,
)

from actors._exceptions import (
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    ProviderTimeoutError,
)
from actors.providers._settings import TtsSettings

__all__ = ("CartesiaTts",)

logger = logging.getLogger(__name__)

VENDOR = "cartesia"
_CLOSE_TIMEOUT_S = 2.0
_IDLE_SOCKETS = 2  # sockets kept open between replies; a room speaks one reply at a time
_ERROR_HINTS = {
    400: ": check [tts] voice, [tts] cartesia_model and the room's language",
    401: ": check CARTESIA_API_KEY ([tts] api_key)",
    402: ": the Cartesia account is out of credit",
    429: ": the plan's concurrency limit (rooms speaking at once) was reached",
}


@contextmanager
def _vendor_errors(action: str) -> Iterator[None]:
    """Translate cartesia-SDK and websockets failures while trying to ``action``."""
    try:
        yield
    except websockets.exceptions.InvalidStatus as exc:
        status = exc.response.status_code
        hint = _ERROR_HINTS.get(status, "")
        raise ProviderStatusError(
            f"cartesia refused to {action} (HTTP {status}){hint}", vendor=VENDOR, status=status
        ) from exc
    except TimeoutError as exc:
        raise ProviderTimeoutError(f"cartesia timed out trying to {action}", vendor=VENDOR) from exc
    except (websockets.exceptions.WebSocketException, OSError) as exc:
        raise ProviderConnectionError(
            f"cartesia connection failed trying to {action}", vendor=VENDOR
        ) from exc
    except CartesiaError as exc:
        raise ProviderError(
            f"cartesia failed trying to {action}", vendor=VENDOR, retryable=False
        ) from exc


def _urls(url: str) -> tuple[str, str]:
    http = url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    return http, http.replace("http://", "ws://", 1).replace("https://", "wss://", 1)


class CartesiaTts:
    """Cartesia WebSocket TTS; implements ``TtsProvider``.

    Args:
        api_key: the Cartesia API key.
        voice: default voice id (``synthesize(voice=...)`` overrides it).
        model: e.g. ``sonic-3``.
        sample_rate: output rate (pcm_s16le, raw).
        base_url: override of Cartesia's URL (``http://`` or ``ws://``), e.g. a local fake.
        timeout_s: longest wait for the handshake and between two audio chunks.
    """

    name = VENDOR

    def __init__(
        self,
        *,
        api_key: str,
        voice: str,
        model: str = "sonic-3",
        sample_rate: int = 24000,
        base_url: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        http, ws = _urls(base_url) if base_url is not None else (None, None)
        self._client = AsyncCartesia(
            api_key=api_key,
            base_url=http,
            websocket_base_url=ws,
            timeout=timeout_s,
            max_retries=0,
        )
        self.sample_rate = sample_rate
        self._voice = voice
        self._model = model
        self._timeout_s = timeout_s
        self._idle: list[AsyncTTSResourceConnection] = []

    @classmethod
    def from_settings(
        cls, settings: TtsSettings, *, api_key: str, voice: str | None = None
    ) -> CartesiaTts:
        return cls(
            api_key=api_key,
            voice=voice or settings.voice,
            model=settings.cartesia_model,
            sample_rate=settings.sample_rate,
            base_url=settings.cartesia_url,
            timeout_s=settings.timeout_s,
        )

    async def synthesize(
        self, text: str, *, voice: str | None = None, language: str | None = None
    ) -> AsyncGenerator[bytes]:
        """Stream pcm_s16le at ``sample_rate`` for ``text`` (one context).

        Raises:
            ProviderStatusError: the handshake or the context was refused (4xx: not retryable).
            ProviderTimeoutError: no audio for ``timeout_s``.
            ProviderConnectionError: Cartesia is unreachable or dropped the socket.
        """
        text = text.strip()
        if not text:
            return
        context_id = uuid.uuid4().hex
        output_format = {
            "container": "raw",
            "encoding": "pcm_s16le",
            "sample_rate": self.sample_rate,
        }
        request: GenerationRequestParam = {
            "context_id": context_id,
            "model_id": self._model,
            "transcript": text,
            "voice": {"id": voice or self._voice},
            "output_format": cast(RawOutputFormatParam, output_format),
            "continue": False,
        }
        if language:
            # Cartesia takes ISO 639-1 codes ("en"), the rooms BCP-47 tags ("en-US").
            request["language"] = language.split("-")[0].lower()
        connection, pooled = await self._send(request)
        outcome = "interrupted"
        heard = False
        try:
            while True:
                try:
                    with _vendor_errors("receive audio"), anyio.fail_after(self._timeout_s):
                        event = await connection.recv()
                except ProviderConnectionError:
                    if heard or not pooled:
                        raise
                    # A pooled socket that Cartesia closed while idle (after 5 minutes), its
                    # close racing our send: not a failure of Cartesia. Once more, on a new one.
                    await self._close(connection)
                    connection, pooled = await self._send(request, pooled=False)
                    continue
                heard = True
                event_context = getattr(event, "context_id", None)
                if event_context != context_id and not (
                    event.type == "error" and event_context is None
                ):
                    continue  # the tail of a context cancelled earlier on this socket
                if event.type == "chunk":
                    if audio := event.audio:
                        yield audio
                elif event.type == "done":
                    outcome = "done"
                    return
                elif event.type == "error":
                    outcome = "done"
                    status = event.status_code or 500
                    hint = _ERROR_HINTS.get(status, "")
                    raise ProviderStatusError(
                        f"cartesia refused the transcript (status {status}){hint}",
                        vendor=VENDOR,
                        status=status,
                    )
        except ProviderError:
            if outcome != "done":
                outcome = "broken"
            raise
        finally:
            with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
                await self._release(connection, context_id, outcome)

    async def aclose(self) -> None:
        """Close the idle sockets and the HTTP client."""
        with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
            while self._idle:
                await self._close(self._idle.pop())
            await self._client.close()

    async def _send(
        self, request: WebsocketClientEventParam, *, pooled: bool = True
    ) -> tuple[AsyncTTSResourceConnection, bool]:
        """Send ``request`` on an idle socket (unless not ``pooled``), else on a new one.

        Returns:
            The socket used, and whether it came from the pool.
        """
        while pooled and self._idle:
            connection = self._idle.pop()
            try:
                with _vendor_errors("send a transcript"):
                    await connection.send(request)
                return connection, True
            except ProviderConnectionError:
                # A pooled socket the server closed while idle: not a failure of Cartesia.
                await self._close(connection)
        with _vendor_errors("open a socket"), anyio.fail_after(self._timeout_s):
            connection = await self._client.tts.websocket_connect().enter()
        try:
            with _vendor_errors("send a transcript"):
                await connection.send(request)
        except BaseException:
            with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
                await self._close(connection)
            raise
        return connection, False

    async def _release(
        self, connection: AsyncTTSResourceConnection, context_id: str, outcome: str
    ) -> None:
        if outcome == "interrupted":
            try:
                with _vendor_errors("cancel a context"):
                    cancel: CancelContextRequest = {"cancel": True, "context_id": context_id}
                    await connection.send(cancel)
            except ProviderError:
                outcome = "broken"
        if outcome == "broken" or len(self._idle) >= _IDLE_SOCKETS:
            await self._close(connection)
        else:
            self._idle.append(connection)

    async def _close(self, connection: AsyncTTSResourceConnection) -> None:
        try:
            await connection.close()
        except Exception:
            logger.debug("cartesia socket close failed", exc_info=True)
