"""How a room host and the supervisor's pool talk: typed worker-protocol messages, two ways.

A worker process speaks them as JSON lines over its pipes (``PipeLink``); with ``workers = 0``
the same host runs in the supervisor's process and the same messages pass through memory
(``memory_links``), unencoded. Neither side knows which it has.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from supervisor.host._protocol import Message, ProtocolError, decode, encode

__all__ = ("HostLink", "MemoryLink", "PipeLink", "memory_links")

logger = logging.getLogger(__name__)

_LINK_BUFFER = 1024
"""Messages in flight each way in memory; a full buffer holds the sender (backpressure)."""


class HostLink(Protocol):
    """One end of a host's conversation with the supervisor."""

    async def receive(self) -> Message:
        """The next message. Raises ``anyio.EndOfStream`` when the other side is gone."""
        ...

    async def send(self, message: Message) -> None:
        """Send one message. Raises ``anyio.BrokenResourceError`` when the other side is gone."""
        ...

    async def aclose(self) -> None:
        """Nothing more will be sent: the other side's ``receive`` ends."""
        ...


class PipeLink:
    """The worker process's end: lines on stdin in, lines on a private copy of stdout out.

    Args:
        stdin: the worker's standard input.
        out: the protocol's output (fd 1 itself points at stderr, so a stray print cannot
            corrupt the protocol).
    """

    def __init__(self, stdin: anyio.AsyncFile[bytes], out: BinaryIO) -> None:
        self._stdin = stdin
        self._out = out

    async def receive(self) -> Message:
        while line := await self._stdin.readline():
            try:
                return decode(line)
            except ProtocolError as exc:
                # One garbled line costs that message, not the host.
                logger.error("bad message from the supervisor", extra={"error": str(exc)})
        raise anyio.EndOfStream

    async def send(self, message: Message) -> None:
        # Small writes to a pipe the supervisor drains continuously: blocking is bounded.
        self._out.write(encode(message))
        self._out.flush()

    async def aclose(self) -> None:
        self._out.flush()  # the process's exit closes the pipe


@dataclass(slots=True)
class MemoryLink:
    """One end of an in-memory link (see ``memory_links``)."""

    _send: MemoryObjectSendStream[Message]
    _receive: MemoryObjectReceiveStream[Message]

    async def receive(self) -> Message:
        return await self._receive.receive()

    async def send(self, message: Message) -> None:
        await self._send.send(message)

    async def aclose(self) -> None:
        self._send.close()
        self._receive.close()


def memory_links() -> tuple[MemoryLink, MemoryLink]:
    """Two connected ends: (the host's, the pool's)."""
    to_host, host_in = anyio.create_memory_object_stream[Message](_LINK_BUFFER)
    to_pool, pool_in = anyio.create_memory_object_stream[Message](_LINK_BUFFER)
    return MemoryLink(to_pool, host_in), MemoryLink(to_host, pool_in)
