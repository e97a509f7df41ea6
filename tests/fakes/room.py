"""A stand-in for ``rtc.Room``: what a room actor uses of it, with no server behind it.

Tests drive it as the SDK would (``emit`` an event, ``open_text`` a stream) and read what the
agent did (``published``: data packets, ``captions``, ``attributes``). The agent's audio still
goes through a real ``rtc.AudioSource`` (it needs no server), so pacing and barge-in are the
production code's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
from livekit import rtc

__all__ = ("FakeParticipant", "FakeReader", "FakeRoom", "FakeTrack")


@dataclass
class FakePermissions:
    can_update_metadata: bool = False


@dataclass
class FakeParticipant:
    identity: str
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    kind: int = 0
    disconnect_reason: Any = None
    permissions: FakePermissions = field(default_factory=FakePermissions)
    track_publications: dict[str, Any] = field(default_factory=dict)
    sid: str = ""


@dataclass
class FakeTrack:
    """A microphone whose frames the test pushes (``say``) and the pipeline reads."""

    sid: str
    kind: Any = rtc.TrackKind.KIND_AUDIO
    frames: anyio.abc.ObjectSendStream[bytes] = field(init=False)
    _receive: anyio.abc.ObjectReceiveStream[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.frames, self._receive = anyio.create_memory_object_stream[bytes](10_000)

    async def pcm(self) -> AsyncGenerator[bytes]:
        async with self._receive:
            async for frame in self._receive:
                yield frame


async def fake_track_audio(track: Any, _rate: int, _frame_ms: int) -> AsyncGenerator[bytes]:
    """The ``track_audio`` seam for a ``FakeTrack``."""
    async for frame in track.pcm():
        yield frame


@dataclass
class FakeReader:
    """A text stream as the SDK hands it to a handler: the whole text, then the end."""

    text: str
    stream_id: str = "ST_1"
    closed: bool = False

    @property
    def info(self) -> Any:
        return self

    def close(self) -> None:
        self.closed = True

    def __aiter__(self) -> FakeReader:
        return self

    async def __anext__(self) -> str:
        if self.closed or not self.text:
            self.closed = True
            raise StopAsyncIteration
        text, self.text = self.text, ""
        return text


@dataclass
class _Publication:
    sid: str


class _Writer:
    def __init__(self, room: FakeRoom, attributes: dict[str, str]) -> None:
        self._room = room
        self._attributes = dict(attributes)
        self._text = ""

    async def write(self, text: str) -> None:
        self._text += text

    async def aclose(self, *, attributes: dict[str, str] | None = None) -> None:
        self._room.captions.append((self._text, {**self._attributes, **(attributes or {})}))


class FakeLocalParticipant:
    def __init__(self, room: FakeRoom) -> None:
        self._room = room
        self.identity = "voice-agent"

    async def publish_data(
        self,
        payload: str | bytes,
        *,
        reliable: bool = True,
        topic: str = "",
        destination_identities: list[str] | None = None,
    ) -> None:
        text = payload.decode() if isinstance(payload, bytes) else payload
        self._room.published.append((topic, list(destination_identities or []), json.loads(text)))
        self._room.changed()

    async def publish_track(self, track: Any, options: Any) -> _Publication:
        return _Publication("TR_agent")

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        self._room.attributes.update(attributes)
        self._room.changed()

    async def stream_text(
        self,
        *,
        topic: str,
        sender_identity: str | None = None,
        attributes: dict[str, str] | None = None,
    ) -> _Writer:
        return _Writer(self._room, attributes or {})


class FakeRoom:
    """What the SDK's ``Room`` gives a room actor; ``emit`` plays the SDK's part."""

    def __init__(self, *, metadata: str = "", people: list[FakeParticipant] | None = None) -> None:
        self.metadata = metadata
        self.name = "fake-room"
        self.remote_participants: dict[str, FakeParticipant] = {p.identity: p for p in people or []}
        self.local_participant = FakeLocalParticipant(self)
        self.handlers: dict[str, Callable[..., None]] = {}
        self.streams: dict[str, Callable[[Any, str], None]] = {}
        self.published: list[tuple[str, list[str], dict[str, Any]]] = []
        self.captions: list[tuple[str, dict[str, str]]] = []
        self.attributes: dict[str, str] = {}
        self.connected = False
        self.disconnected = anyio.Event()
        self._changed = anyio.Event()

    # -- what the actor calls -------------------------------------------------------------------

    def on(self, event: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
        def register(fn: Callable[..., None]) -> Callable[..., None]:
            self.handlers[event] = fn
            return fn

        return register

    def register_text_stream_handler(self, topic: str, fn: Callable[[Any, str], None]) -> None:
        self.streams[topic] = fn

    def register_byte_stream_handler(self, topic: str, fn: Callable[[Any, str], None]) -> None:
        self.streams[topic] = fn

    async def connect(self, url: str, token: str, options: Any = None) -> None:
        self.connected = True

    async def disconnect(self) -> None:
        self.connected = False
        self.disconnected.set()

    def as_rtc_room(self) -> rtc.Room:
        """This room where the product takes an ``rtc.Room`` (``room_factory=room.as_rtc_room``).

        It has what a room actor uses of one, not the SDK class, so mypy cannot see that it fits:
        the cast says so in this one place, and the actor tests are what check it.
        """
        return cast(rtc.Room, self)

    # -- what the test does ---------------------------------------------------------------------

    def emit(self, event: str, *args: Any) -> None:
        self.handlers[event](*args)

    def join(self, person: FakeParticipant) -> None:
        self.remote_participants[person.identity] = person
        self.emit("participant_connected", person)

    def leave(self, identity: str) -> None:
        self.emit("participant_disconnected", self.remote_participants.pop(identity))

    def send_text(self, topic: str, sender: str, text: str, stream_id: str = "ST_1") -> FakeReader:
        reader = FakeReader(text, stream_id)
        self.streams[topic](reader, sender)
        return reader

    def changed(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, what: Callable[[], Any], deadline_s: float = 5.0) -> Any:
        """Wait until ``what()`` is truthy (the agent published, captioned or set something)."""
        with anyio.fail_after(deadline_s):
            while not (value := what()):
                await self._changed.wait()
            return value

    def replies(self) -> list[dict[str, Any]]:
        return [payload for topic, _to, payload in self.published if topic == "agent.reply"]
