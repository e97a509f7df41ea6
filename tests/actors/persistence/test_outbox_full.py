"""An outbox that cannot take more: ``outbox_max_mb`` reached, or the disk full. ``emit()``
refuses with ``OutboxFullError``, readyz answers 503 with the reason, one log line names the
setting, and the events already taken arrive once there is room again."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client import REGISTRY

from actors import OutboxFullError
from actors.persistence import EmbeddedStore, PersistenceActor
from supervisor import Config, Daemon, parse_config
from supervisor.host import PROTOCOL_VERSION, Pong, decode, encode
from supervisor.workers import WorkerPool
from tests.actors.persistence.conftest import (
    RecordingClock,
    arrival_by_conversation,
    running,
    settings,
    turn,
)
from tests.fakes.backend import FaultyBackend
from tests.harness.livekit_server import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.faults]

BIG = "x" * 4000  # a long turn: about 250 of them fill one megabyte


def refusing(outbox: str) -> float:
    return REGISTRY.get_sample_value("voice_supervisor_outbox_refusing", {"outbox": outbox}) or 0


def daemon_config(data_dir: Path, backend: FaultyBackend, **persistence: object) -> Config:
    return parse_config(
        {
            # Nothing listens there: reconcile fails and is retried, which is all it does here.
            "livekit": {"url": "ws://127.0.0.1:9", "api_key": "k", "api_secret": "s" * 32},
            "server": {"host": "127.0.0.1", "port": free_port()},
            "persistence": {
                "data_dir": str(data_dir),
                "backend_url": backend.url,
                "flush_interval_ms": 2,
                "retry_initial_s": 0.01,
                "retry_max_s": 0.05,
                **persistence,
            },
            "supervisor": {"workers": 0, "reconcile_interval_s": 30.0},
            "voice": {"enabled": False},
        },
        environ={},
    )


async def test_outbox_max_mb_refuses_events_and_readyz_reports_it(
    tmp_path: Path, backend: FaultyBackend, caplog: pytest.LogCaptureFixture
) -> None:
    await backend.down()  # nothing ships: the outbox only grows
    config = daemon_config(tmp_path / "data", backend, outbox_max_mb=1)
    daemon = Daemon(config)
    emitted = 0
    async with anyio.create_task_group() as tg:
        info = await tg.start(daemon.run)
        persistence = daemon.persistence
        assert persistence is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{info.port}") as http:
            assert (await http.get("/readyz")).status_code == 200
            with pytest.raises(OutboxFullError, match="outbox_max_mb"):
                while emitted < 1000:  # about four times what fits
                    for _ in range(50):
                        persistence.emit(turn(f"conv-{emitted % 3}", emitted, content=BIG))
                        emitted += 1
                    await persistence.flush()
            assert 200 < emitted < 400
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            details = ready.json()
            assert "outbox_max_mb" in details["reason"]
            assert list(details["outbox"]) == ["main"]
            assert refusing("main") == 1
            warnings = [r for r in caplog.records if "outbox_max_mb" in r.getMessage()]
            assert [r.levelno for r in warnings] == [logging.WARNING]
            # The backend comes back: the outbox drains, and events are taken again.
            await backend.up()
            with anyio.fail_after(20):
                await persistence.wait_empty()
            assert persistence.refusal is None and refusing("main") == 0
            assert (await http.get("/readyz")).status_code == 200
            persistence.emit(turn("conv-0", emitted))
            emitted += 1
            with anyio.fail_after(20):
                await persistence.flush()
                await persistence.wait_empty()
        daemon.request_stop()
    arrived = arrival_by_conversation(backend.store)
    assert sorted(i for ids in arrived.values() for i in ids) == list(range(emitted))


async def test_a_full_disk_refuses_events_retries_with_backoff_and_logs_once(
    tmp_path: Path,
    store: EmbeddedStore,
    backend: FaultyBackend,
    clock: RecordingClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="actors.persistence")
    s = settings(tmp_path / "data", backend, retry_initial_s=0.01, retry_max_s=0.08)
    actor = PersistenceActor(s, store, clock)
    async with running(actor):
        actor.emit(turn("conv-0", 0))
        await actor.flush()
        # A real SQLITE_FULL ("database or disk is full") without filling a disk: the outbox's
        # own connection may not grow the file any more.
        outbox = actor._outbox
        assert outbox is not None
        db = outbox._db
        pages = await actor._thread.run(lambda: db.execute("PRAGMA page_count").fetchone()[0])
        await actor._thread.run(db.execute, f"PRAGMA max_page_count = {pages}")
        for i in range(1, 40):
            actor.emit(turn("conv-0", i, content=BIG))
        with anyio.fail_after(20):
            await clock.wait_sleeps(8)
        assert actor.refusal is not None and "disk is full" in actor.refusal
        with pytest.raises(OutboxFullError, match="disk is full"):
            actor.emit(turn("conv-0", 40))
        assert refusing("main") == 1
        # Backoff from retry_initial_s, doubling up to retry_max_s; one log line for them all.
        assert clock.sleeps[:6] == [0.01, 0.02, 0.04, 0.08, 0.08, 0.08]
        full = [r for r in caplog.records if "disk is full" in r.getMessage()]
        assert len(full) == 1 and full[0].levelno == logging.ERROR
        await actor._thread.run(db.execute, "PRAGMA max_page_count = 1073741823")
        with anyio.fail_after(20):
            await actor.flush()
            await actor.wait_empty()
        assert actor.refusal is None and refusing("main") == 0
        assert any(r.getMessage() == "committing events works again" for r in caplog.records)
    assert arrival_by_conversation(backend.store) == {"conv-0": list(range(40))}


async def test_readyz_reports_a_workers_full_outbox_from_its_pong(tmp_path: Path) -> None:
    reason = "cannot emit an event: the outbox holds [persistence] outbox_max_mb ..."
    line = {"v": PROTOCOL_VERSION, "type": "pong", "seq": 7, "rss_mb": 100.0, "metrics": []}
    pong = decode(json.dumps({**line, "outbox_refusal": reason}).encode())
    assert isinstance(pong, Pong) and pong.outbox_refusal == reason
    assert decode(encode(pong)) == pong
    healthy = decode(json.dumps(line).encode())  # a pong without it: nothing refused
    assert isinstance(healthy, Pong) and healthy.outbox_refusal is None
    config = parse_config({"supervisor": {"workers": 2}}, environ={})
    daemon = Daemon(config)
    pool = WorkerPool(config)
    daemon.pool = pool
    pool.workers[1].outbox_refusal = pong.outbox_refusal
    ready, details = daemon._readiness()
    assert not ready
    assert details["outbox"] == {"worker-1": reason}
    assert details["reason"] == reason
