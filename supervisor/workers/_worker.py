"""The room-worker process: a room host on pipes, nothing else.

Started by the supervisor (spawned, never forked: the rtc FFI is not fork-safe) as
``python -m supervisor.workers``. Its first line on stdin is ``Hello`` (its number and the
configuration, secrets included); then it runs a ``RoomHost`` whose link is its stdin and a
private copy of its stdout (fd 1 itself is pointed at stderr, so a stray print cannot corrupt
the protocol).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import BinaryIO

import anyio

from actors.room import dispose_rtc
from supervisor._config import parse_config
from supervisor._logging import configure_logging
from supervisor.host import Hello, PipeLink, ProtocolError, RoomHost, decode

__all__ = ("worker_main",)


async def _main(out: BinaryIO) -> None:
    stdin = anyio.wrap_file(sys.stdin.buffer)
    hello = decode(await stdin.readline())
    if not isinstance(hello, Hello):
        raise ProtocolError("a worker's first message must be hello")
    config = parse_config(hello.config, environ={})
    configure_logging(config.logging)
    try:
        await RoomHost(hello.worker_id, config).run(PipeLink(stdin, out))
    finally:
        dispose_rtc()


def worker_main() -> int:
    """Entry point of ``python -m supervisor.workers``."""
    # Ctrl-C in a terminal (and a SIGTERM to the process group) reaches every worker too; the
    # supervisor owns the shutdown ladder and tells each worker when to stop its rooms, so the
    # workers leave these signals to it. EOF on stdin (the supervisor gone) also stops them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    protocol_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed to stdout now lands in the log, not in the protocol
    sys.stdout = sys.stderr
    with os.fdopen(protocol_fd, "wb") as out:
        anyio.run(_main, out, backend="asyncio")
    return 0
