"""Test participants: join a room as a person would, with a token from the test server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from livekit import api, rtc

from tests.harness.livekit_server import LiveKitServer


def participant_token(
    server: LiveKitServer, room: str, identity: str, *, name: str = "", metadata: str = ""
) -> str:
    return (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(identity)
        .with_name(name or identity)
        .with_metadata(metadata)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )


@asynccontextmanager
async def joined(
    server: LiveKitServer, room: str, identity: str, *, name: str = "", metadata: str = ""
) -> AsyncIterator[rtc.Room]:
    """A connected ``rtc.Room`` as ``identity``; disconnects on exit."""
    lk_room = rtc.Room()
    token = participant_token(server, room, identity, name=name, metadata=metadata)
    await lk_room.connect(server.ws_url, token)
    try:
        yield lk_room
    finally:
        await lk_room.disconnect()
