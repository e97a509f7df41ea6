"""Admission of what participants send a room: rates, open streams and file budgets.

Every check runs in the SDK's synchronous callback, before anything is queued or read, so a
flood costs a dictionary lookup per packet and never fills the actor's mailbox or starts a
task. What is refused is counted; only the first refusal of a burst is worth an answer (the
others would be a flood of our own).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actors._clock import Clock
from actors._metrics import DATA_MESSAGES
from actors.room._settings import DataSettings

__all__ = ("Admission", "Refusal", "TokenBucket")


class TokenBucket:
    """``capacity`` tokens, refilled at ``per_minute`` a minute; ``take`` spends one."""

    __slots__ = ("_capacity", "_clock", "_rate", "_stamp", "_tokens")

    def __init__(self, per_minute: int, capacity: int, clock: Clock) -> None:
        self._rate = per_minute / 60.0
        self._capacity = float(capacity)
        self._tokens = float(capacity)
        self._clock = clock
        self._stamp = clock.monotonic()

    def take(self) -> bool:
        now = self._clock.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why something was refused; ``notify`` is False for the rest of a refused burst."""

    reason: str
    notify: bool


@dataclass(slots=True)
class _Sender:
    commands: TokenBucket
    chat: TokenBucket
    open_streams: int = 0
    refused_quietly: set[str] = field(default_factory=set)


class Admission:
    """Quotas of one room, per participant and for the room as a whole.

    Args:
        settings: the ``[data]`` limits.
        clock: time source of the token buckets.
    """

    def __init__(self, settings: DataSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._senders: dict[str, _Sender] = {}
        self._open_streams = 0
        self._files = 0
        self._file_bytes = 0

    @property
    def open_streams(self) -> int:
        return self._open_streams

    def message(self, identity: str, topic: str, *, chat: bool = False) -> Refusal | None:
        """A command (or, with ``chat``, a chat message) from ``identity``: None = admitted."""
        sender = self._sender(identity)
        bucket = sender.chat if chat else sender.commands
        if bucket.take():
            sender.refused_quietly.discard(topic)
            return None
        setting = "chat_per_minute" if chat else "commands_per_minute"
        rate = self._settings.chat_per_minute if chat else self._settings.commands_per_minute
        return self._refuse(
            sender,
            topic,
            f"over quota: at most {rate} per minute per participant ([data] {setting})",
        )

    def open_stream(self, identity: str, topic: str) -> Refusal | None:
        """A stream from ``identity`` wants to be read; on None, call ``stream_closed`` later."""
        sender = self._sender(identity)
        if sender.open_streams >= self._settings.max_open_streams:
            return self._refuse(
                sender,
                topic,
                f"too many open streams: at most {self._settings.max_open_streams} per "
                "participant ([data] max_open_streams)",
            )
        if self._open_streams >= self._settings.room_max_open_streams:
            return self._refuse(
                sender,
                topic,
                f"too many open streams in this room: at most "
                f"{self._settings.room_max_open_streams} ([data] room_max_open_streams)",
            )
        sender.open_streams += 1
        self._open_streams += 1
        sender.refused_quietly.discard(topic)
        return None

    def stream_closed(self, identity: str) -> None:
        sender = self._senders.get(identity)
        if sender is not None and sender.open_streams > 0:
            sender.open_streams -= 1
        self._open_streams = max(0, self._open_streams - 1)

    def file_started(self) -> str | None:
        """A file upload begins: None, or why the room takes no more files."""
        if self._files >= self._settings.room_max_files:
            return (
                f"this room accepts no more files (at most {self._settings.room_max_files}; "
                "[data] room_max_files)"
            )
        self._files += 1
        return None

    def file_bytes(self, count: int) -> str | None:
        """``count`` more bytes of an upload arrived: None, or why the room takes no more."""
        if self._file_bytes + count > self._settings.room_file_bytes:
            return (
                f"this room accepts no more file bytes (at most {self._settings.room_file_mb:g} "
                "MB per session; [data] room_file_mb)"
            )
        self._file_bytes += count
        return None

    def file_released(self, count: int) -> None:
        """Bytes of an upload that was refused or aborted no longer count."""
        self._file_bytes = max(0, self._file_bytes - count)

    def forget(self, identity: str) -> None:
        """The participant left: its buckets go (open streams end on their own)."""
        sender = self._senders.get(identity)
        if sender is not None and sender.open_streams == 0:
            del self._senders[identity]

    def _sender(self, identity: str) -> _Sender:
        sender = self._senders.get(identity)
        if sender is None:
            s = self._settings
            sender = _Sender(
                TokenBucket(s.commands_per_minute, s.burst, self._clock),
                TokenBucket(s.chat_per_minute, s.burst, self._clock),
            )
            self._senders[identity] = sender
        return sender

    def _refuse(self, sender: _Sender, topic: str, reason: str) -> Refusal:
        DATA_MESSAGES.labels(topic=topic, result="over_quota").inc()
        notify = topic not in sender.refused_quietly
        sender.refused_quietly.add(topic)
        return Refusal(reason, notify)
