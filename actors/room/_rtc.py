"""Process-level care of the LiveKit rtc native runtime."""

from __future__ import annotations

import anyio
from livekit import rtc
from livekit.rtc._ffi_client import FfiClient

from actors.room._settings import CONNECT_BACKSTOP_S

__all__ = ("connect_room", "dispose_rtc")


async def connect_room(room: rtc.Room, url: str, token: str, timeout_s: float) -> None:
    """``room.connect`` that cancellation cannot interrupt half-way.

    livekit 1.2.1 acknowledges a successful native connect (``ReadyForRoomEvent``) only after
    its awaited callback returns; if the awaiting task is cancelled in between (a stop request,
    a drain, a deadline), the native side times out waiting and *panics*, and the SDK answers a
    panic by sending SIGTERM to the whole process — every room of it. So the connect is
    shielded and bounded by the SDK's own timeout (three signal attempts of a third each);
    a cancellation waiting outside is delivered as soon as it returns.

    Raises:
        rtc.ConnectError: the SDK could not connect.
        TimeoutError: it neither connected nor failed within the backstop.
    """
    options = rtc.RoomOptions(auto_subscribe=True, connect_timeout=max(1.0, timeout_s / 3))
    with anyio.CancelScope(shield=True):
        with anyio.fail_after(timeout_s + CONNECT_BACKSTOP_S):
            await room.connect(url, token, options)


def dispose_rtc() -> None:
    """Stop the native rtc runtime while the event loop still runs.

    The SDK disposes it at interpreter exit, after the loop has closed; a native event that
    arrives in between is posted to a closed loop and aborts the process from a native thread
    (exit 134 instead of a clean 0 after SIGTERM). Call this last thing inside the loop, once
    every room is disconnected. Uses the SDK's private ``_dispose``: it has no public one.
    """
    if FfiClient._instance is not None:
        FfiClient._instance._dispose()
