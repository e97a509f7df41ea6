"""``kill -9`` of a process emitting events, then a restart: nothing acknowledged is lost or
stored twice."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from actors.persistence import EmbeddedStore, PersistenceActor
from actors.persistence._outbox import Outbox
from tests.actors.persistence.conftest import arrival_by_conversation, running, settings
from tests.fakes.backend import Fault, FaultyBackend

pytestmark = [pytest.mark.anyio, pytest.mark.faults]

ROOT = Path(__file__).resolve().parents[3]
CONVERSATIONS = 5
ACKED_BEFORE_KILL = 3000


async def test_kill_9_then_restart_delivers_every_acknowledged_event_once(
    tmp_path: Path, store: EmbeddedStore, backend: FaultyBackend
) -> None:
    data = tmp_path / "data"
    # A slow backend, so that a backlog waits in the outbox and a batch is in flight at the kill.
    backend.fail(*[Fault(delay_s=0.2, pass_through=True)] * 100_000)
    with (tmp_path / "emitter.log").open("wb") as log:  # noqa: ASYNC230 (a local file, at once)
        process = await anyio.open_process(
            [
                sys.executable,
                "-m",
                "tests.actors.persistence.emitter",
                str(data),
                backend.url,
                str(CONVERSATIONS),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        acked = 0
        try:
            assert process.stdout is not None
            with anyio.fail_after(30):
                buffer = ""
                async for chunk in TextReceiveStream(process.stdout):
                    buffer += chunk
                    *lines, buffer = buffer.split("\n")
                    for line in lines:
                        acked = max(acked, int(line.removeprefix("acked ")))
                    if acked >= ACKED_BEFORE_KILL and backend.received:
                        break
        finally:
            process.kill()
            await process.wait()
    assert process.returncode == -signal.SIGKILL
    left = Outbox.open(data / "outbox-main.sqlite3")
    leftover = left.count
    left.close()
    assert leftover > 0, "the kill should leave a backlog in the outbox"

    backend.faults.clear()
    restarted = PersistenceActor(settings(data, backend), store)
    async with running(restarted):
        with anyio.fail_after(30):
            await restarted.wait_empty()

    arrived = arrival_by_conversation(backend.store)
    stored = sorted(i for ids in arrived.values() for i in ids)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert set(range(acked)) <= set(stored), "an acknowledged event was lost"
    for conversation, ids in arrived.items():
        assert ids == sorted(ids), f"{conversation} arrived out of order"
        assert all(i % CONVERSATIONS == int(conversation.removeprefix("conv-")) for i in ids)
    assert restarted.shipped >= leftover
