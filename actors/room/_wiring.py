"""Wiring of a room's SDK callbacks: each one only posts a message to the actor's mailbox.

The SDK calls these synchronously on the event loop, so they never await and never touch the
actor's state; data messages pass the room's quotas here, before anything is queued or read,
and a refused stream's reader is closed at once.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from livekit import rtc

from actors._clock import Clock
from actors.room._data import TOPIC_CHAT, TOPIC_COMMAND, TOPIC_FILE
from actors.room._messages import (
    CommandReceived,
    DataRefused,
    Disconnected,
    MetadataChanged,
    ParticipantJoined,
    ParticipantLeft,
    RoomMessage,
    StreamOpened,
    TrackSubscribed,
    TrackUnsubscribed,
)
from actors.room._quota import Admission, Refusal

__all__ = ("close_queued_readers", "joined_message", "wire_room")

logger = logging.getLogger(__name__)


def wire_room(
    room: rtc.Room,
    inbox: MemoryObjectSendStream[RoomMessage],
    admission: Admission,
    clock: Clock,
    stop: anyio.Event,
) -> None:
    """Register the callbacks that turn ``room``'s SDK events into messages in ``inbox``.

    Args:
        room: the room, not yet connected (so no event is missed).
        inbox: the actor's mailbox; when it is full, events are dropped and counted.
        admission: the room's quotas, checked before a data message is queued or read.
        clock: stamps arrivals and departures.
        stop: set when the room is gone, for a stop that could not be posted.
    """
    dropped = 0

    def post(message: RoomMessage) -> bool:
        nonlocal dropped
        try:
            inbox.send_nowait(message)
            return True
        except anyio.WouldBlock:
            dropped += 1
            # Once per power of two: a flood must not become a flood of log lines.
            if dropped & (dropped - 1) == 0:
                logger.error(
                    "room actor mailbox full; events dropped",
                    extra={"dropped": dropped},
                )
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        return False

    def refuse(topic: str, identity: str, item_id: str, refusal: Refusal) -> None:
        if refusal.notify:
            post(DataRefused(topic, identity, item_id, refusal.reason))

    def admit_stream(
        topic: str, identity: str, reader: rtc.TextStreamReader | rtc.ByteStreamReader
    ) -> None:
        # Checked before anything is queued or read; a refused reader is closed at once.
        refusal = admission.open_stream(identity, topic)
        if refusal is None and topic != TOPIC_FILE:
            refusal = admission.message(identity, topic, chat=topic == TOPIC_CHAT)
            if refusal is not None:
                admission.stream_closed(identity)
        if refusal is not None:
            reader.close()
            if topic != TOPIC_CHAT:
                refuse(topic, identity, reader.info.stream_id, refusal)
        elif not post(StreamOpened(topic, identity, reader)):
            reader.close()
            admission.stream_closed(identity)

    now = clock.now

    @room.on("participant_connected")
    def _joined(p: rtc.RemoteParticipant) -> None:
        post(joined_message(p, now()))

    @room.on("participant_disconnected")
    def _left(p: rtc.RemoteParticipant) -> None:
        post(ParticipantLeft(p.identity, _reason(p.disconnect_reason), now()))

    @room.on("participant_metadata_changed")
    def _meta(p: rtc.Participant, _old: str, new: str) -> None:
        post(MetadataChanged(p.identity, metadata=new))

    @room.on("participant_name_changed")
    def _name(p: rtc.Participant, _old: str, new: str) -> None:
        post(MetadataChanged(p.identity, name=new))

    @room.on("participant_attributes_changed")
    def _attrs(_changed: dict[str, str], p: rtc.Participant) -> None:
        post(MetadataChanged(p.identity, attributes=dict(p.attributes)))

    @room.on("participant_permissions_changed")
    def _permissions(p: rtc.Participant, permissions: Any) -> None:
        may_set = bool(permissions.can_update_metadata)
        post(MetadataChanged(p.identity, may_set_attributes=may_set))

    @room.on("room_metadata_changed")
    def _room_meta(_old: str, new: str) -> None:
        post(MetadataChanged("", metadata=new))

    @room.on("track_subscribed")
    def _subscribed(
        track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant
    ) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            post(TrackSubscribed(p.identity, pub.sid, track))

    @room.on("track_unsubscribed")
    def _unsubscribed(
        _track: rtc.Track, pub: rtc.RemoteTrackPublication, _p: rtc.RemoteParticipant
    ) -> None:
        post(TrackUnsubscribed(pub.sid))

    def on_chat(reader: rtc.TextStreamReader, identity: str) -> None:
        admit_stream(TOPIC_CHAT, identity, reader)

    def on_file(reader: rtc.ByteStreamReader, identity: str) -> None:
        admit_stream(TOPIC_FILE, identity, reader)

    def on_command(reader: rtc.TextStreamReader, identity: str) -> None:
        admit_stream(TOPIC_COMMAND, identity, reader)

    room.register_text_stream_handler(TOPIC_CHAT, on_chat)
    room.register_text_stream_handler(TOPIC_COMMAND, on_command)
    room.register_byte_stream_handler(TOPIC_FILE, on_file)

    @room.on("data_received")
    def _data(packet: rtc.DataPacket) -> None:
        # A packet may arrive before the SDK announces its sender: it then has no identity,
        # hence no role, and is answered to everyone; a text stream names its sender.
        if packet.topic == TOPIC_COMMAND:
            sender = packet.participant.identity if packet.participant is not None else ""
            refusal = admission.message(sender, TOPIC_COMMAND)
            if refusal is not None:
                refuse(TOPIC_COMMAND, sender, "", refusal)
            else:
                post(CommandReceived(sender, bytes(packet.data)))

    @room.on("disconnected")
    def _disconnected(reason: rtc.DisconnectReason.ValueType) -> None:
        post(Disconnected(_reason(reason)))
        stop.set()


def joined_message(p: rtc.RemoteParticipant, at: float) -> ParticipantJoined:
    return ParticipantJoined(
        p.identity,
        p.name,
        p.metadata,
        dict(p.attributes),
        int(p.kind),
        at,
        may_set_attributes=bool(p.permissions.can_update_metadata),
        sid=p.sid,
    )


def _reason(value: rtc.DisconnectReason.ValueType | None) -> str:
    if value is None:
        return "unknown"
    try:
        return str(rtc.DisconnectReason.Name(value)).lower()
    except ValueError:
        return "unknown"


def close_queued_readers(inbox: MemoryObjectReceiveStream[RoomMessage]) -> None:
    """Close the stream readers still queued: each holds an SDK subscription otherwise."""
    while True:
        try:
            message = inbox.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return
        if isinstance(message, StreamOpened):
            message.reader.close()
