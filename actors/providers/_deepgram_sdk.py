"""deepgram-sdk 7's edges: its modules loaded quietly, its failures as ``ProviderError``s, and
an environment for a base URL override. The one place SDK and websockets exceptions are
translated."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import websockets.exceptions
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment

from actors._exceptions import ProviderConnectionError, ProviderStatusError, ProviderTimeoutError

__all__ = ("HANDSHAKE_SETTINGS", "VENDOR", "deepgram_environment", "vendor_errors")

VENDOR = "deepgram"


def _preload_sdk() -> None:
    """Import the SDK's socket modules now, without their DeprecationWarnings.

    deepgram-sdk 7 connects through websockets' legacy client and imports the deprecated
    ``InvalidStatusCode``; both warn once at import (lazily, on the first stream otherwise).
    Nothing here can change that, and it must not break runs that treat warnings as errors.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        importlib.import_module("deepgram.listen.v1.socket_client")
        importlib.import_module("deepgram.listen.v1.raw_client")


_preload_sdk()


# What to fix when the handshake is refused with a final status.
HANDSHAKE_SETTINGS = {
    400: "check [stt] language and [stt] deepgram_model (Deepgram has no such model/language)",
    401: "check DEEPGRAM_API_KEY ([stt] api_key)",
    402: "the Deepgram project is out of credit",
    403: "check DEEPGRAM_API_KEY ([stt] api_key): the key may not use this model",
}


@contextmanager
def vendor_errors(action: str) -> Iterator[None]:
    """Translate deepgram-sdk and websockets failures while trying to ``action``."""
    try:
        yield
    except ApiError as exc:
        # exc.headers are the *request* headers (the key among them): never logged.
        status = exc.status_code or 0
        hint = HANDSHAKE_SETTINGS.get(status)
        suffix = f": {hint}" if hint else ""
        raise ProviderStatusError(
            f"deepgram refused to {action} (HTTP {status}){suffix}", vendor=VENDOR, status=status
        ) from exc
    except TimeoutError as exc:
        raise ProviderTimeoutError(f"deepgram timed out trying to {action}", vendor=VENDOR) from exc
    except websockets.exceptions.ConnectionClosedError as exc:
        # Deepgram's idle close: 1011, "... See https://dpgr.am/net0001".
        idle = exc.rcvd is not None and "net0001" in exc.rcvd.reason.lower().replace("-", "")
        why = " (NET-0001: no audio or KeepAlive for 10 s)" if idle else ""
        raise ProviderConnectionError(
            f"deepgram closed the stream trying to {action}{why}", vendor=VENDOR
        ) from exc
    except (websockets.exceptions.WebSocketException, OSError) as exc:
        raise ProviderConnectionError(
            f"deepgram connection failed trying to {action}", vendor=VENDOR
        ) from exc


def deepgram_environment(url: str) -> DeepgramClientEnvironment:
    """An environment whose REST and WebSocket bases both point at ``url``."""
    http = url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    ws = http.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return DeepgramClientEnvironment(base=http, production=ws, agent=ws, agent_rest=http)
