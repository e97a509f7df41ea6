"""Process-level care of the LiveKit rtc native runtime."""

from __future__ import annotations

from livekit.rtc._ffi_client import FfiClient

__all__ = ("dispose_rtc",)


def dispose_rtc() -> None:
    """Stop the native rtc runtime while the event loop still runs.

    The SDK disposes it at interpreter exit, after the loop has closed; a native event that
    arrives in between is posted to a closed loop and aborts the process from a native thread
    (exit 134 instead of a clean 0 after SIGTERM). Call this last thing inside the loop, once
    every room is disconnected. Uses the SDK's private ``_dispose``: it has no public one.
    """
    if FfiClient._instance is not None:
        FfiClient._instance._dispose()
