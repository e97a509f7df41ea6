"""Test participants: join a room as a person would, with a token from the test server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from livekit import api, rtc


class ServerAccess(Protocol):
    """Where a test participant connects and how it signs its token."""

    @property
    def ws_url(self) -> str: ...
    @property
    def api_key(self) -> str: ...
    @property
    def api_secret(self) -> str: ...


@dataclass(frozen=True)
class Access:
    ws_url: str
    api_key: str
    api_secret: str


def participant_token(
    server: ServerAccess,
    room: str,
    identity: str,
    *,
    name: str = "",
    metadata: str = "",
    attributes: dict[str, str] | None = None,
    may_set_own_attributes: bool = False,
) -> str:
    """A participant token as a backend would mint it (attributes such as a role included)."""
    grants = api.VideoGrants(
        room_join=True, room=room, can_update_own_metadata=may_set_own_attributes
    )
    return (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(identity)
        .with_name(name or identity)
        .with_metadata(metadata)
        .with_attributes(attributes or {})
        .with_grants(grants)
        .to_jwt()
    )


@asynccontextmanager
async def joined(
    server: ServerAccess,
    room: str,
    identity: str,
    *,
    name: str = "",
    metadata: str = "",
    attributes: dict[str, str] | None = None,
    may_set_own_attributes: bool = False,
) -> AsyncIterator[rtc.Room]:
    """A connected ``rtc.Room`` as ``identity``; disconnects on exit."""
    lk_room = rtc.Room()
    token = participant_token(
        server,
        room,
        identity,
        name=name,
        metadata=metadata,
        attributes=attributes,
        may_set_own_attributes=may_set_own_attributes,
    )
    await lk_room.connect(server.ws_url, token)
    try:
        yield lk_room
    finally:
        await lk_room.disconnect()
