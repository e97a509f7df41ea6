"""What an operator relies on: readyz turns 503 with the reason when LiveKit stops answering,
``check-config`` refuses what ``run`` could not run, and ``run`` exits 2 at once (no restart
loop) when a room host cannot start for a configuration reason."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.lowlevel
import httpx
import pytest
from livekit import api
from prometheus_client import REGISTRY

from actors import SYSTEM_CLOCK
from supervisor import AgentSettings, Daemon, RoomRegistry, SupervisorSettings, parse_config
from supervisor._messages import SupervisorMessage
from supervisor._preflight import config_problems
from supervisor._supervisor import Supervisor
from tests.harness.livekit_server import free_port
from tests.harness.offline import offline_config, serving
from tests.harness.waits import poll_until

ROOT = Path(__file__).resolve().parents[2]
_SECRETS = ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CARTESIA_API_KEY")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _SECRETS}
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,  # a deadline, not a wait: a restart loop would run into it
        check=False,
    )


# -- LiveKit reachability ---------------------------------------------------------------------


class ManualClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        await anyio.lowlevel.checkpoint()


class Listing:
    """The room service: answers, or fails like a server that is down."""

    def __init__(self) -> None:
        self.up = True

    async def list_rooms(self, _request: api.ListRoomsRequest) -> api.ListRoomsResponse:
        if not self.up:
            raise ConnectionRefusedError
        return api.ListRoomsResponse(rooms=[])


class _Api:
    def __init__(self, room: Listing) -> None:
        self.room = room


@contextlib.contextmanager
def _supervisor(interval_s: float) -> Iterator[tuple[Supervisor, Listing, ManualClock]]:
    clock = ManualClock()
    settings = SupervisorSettings(reconcile_interval_s=interval_s)
    # Reconcile with no rooms listed and none asked for never calls the actor factories.
    registry = RoomRegistry(settings, cast(Any, None), cast(Any, None), clock=clock)
    send, receive = anyio.create_memory_object_stream[SupervisorMessage](1)
    listing = Listing()
    lkapi = cast(api.LiveKitAPI, _Api(listing))
    with send, receive:
        yield (
            Supervisor(settings, AgentSettings(), registry, receive, lkapi, clock=clock),
            listing,
            clock,
        )


@pytest.mark.anyio
async def test_livekit_counts_as_unreachable_after_two_reconcile_intervals() -> None:
    with _supervisor(interval_s=15.0) as (supervisor, listing, clock):
        await _goes_unreachable_after_two_intervals(supervisor, listing, clock)


async def _goes_unreachable_after_two_intervals(
    supervisor: Supervisor, listing: Listing, clock: ManualClock
) -> None:
    await supervisor.reconcile()
    assert supervisor.livekit_health() == (
        True,
        {"reachable": True, "last_call": "ok", "last_call_age_s": 0.0, "last_ok_age_s": 0.0},
    )
    assert REGISTRY.get_sample_value("voice_supervisor_livekit_up") == 1
    listing.up = False
    clock.t += 15
    await supervisor.reconcile()
    ok, details = supervisor.livekit_health()
    assert ok and details["last_call"] == "ConnectionRefusedError"  # one failure is no outage
    assert REGISTRY.get_sample_value("voice_supervisor_livekit_up") == 0
    clock.t += 15.1
    ok, details = supervisor.livekit_health()
    assert not ok
    assert details == {
        "reachable": False,
        "last_call": "ConnectionRefusedError",
        "last_call_age_s": 15.1,
        "last_ok_age_s": 30.1,
    }
    listing.up = True
    await supervisor.reconcile()
    assert supervisor.livekit_health()[0]


@pytest.mark.anyio
async def test_short_intervals_still_allow_a_few_seconds() -> None:
    with _supervisor(interval_s=0.1) as (supervisor, listing, clock):
        listing.up = False
        await supervisor.reconcile()  # before any listing worked: counted from the start
        clock.t += 4.9
        assert supervisor.livekit_health()[0]
        clock.t += 0.2
        ok, details = supervisor.livekit_health()
        assert not ok and details["last_ok_age_s"] is None


@pytest.mark.anyio
async def test_readyz_is_503_with_the_reason_while_livekit_is_unreachable(tmp_path: Path) -> None:
    config = offline_config(
        tmp_path,
        supervisor={"workers": 0, "reconcile_interval_s": 0.2},
        voice={"enabled": False},
    )
    daemon = Daemon(config, clock=SYSTEM_CLOCK)
    async with serving(daemon) as http:

        async def unready() -> httpx.Response | None:
            response = await http.get("/readyz")
            return response if response.status_code == 503 else None

        response = await poll_until(unready, deadline_s=15, what="readyz 503")
        body = response.json()
        assert body["ready"] is False
        assert "LiveKit unreachable" in body["reason"] and "[livekit] url" in body["reason"]
        assert body["livekit"]["reachable"] is False
        assert body["livekit"]["last_call"] not in (None, "ok")
        assert body["livekit"]["last_ok_age_s"] is None


# -- check-config and run ---------------------------------------------------------------------


@pytest.fixture
def deepgram_without_key(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[livekit]\nurl = "ws://127.0.0.1:{free_port()}"\n'
        f"[server]\nport = {free_port()}\n"
        f'[persistence]\ndata_dir = "{tmp_path / "data"}"\n'
        '[stt]\nprovider = "deepgram"\n'
    )
    yield path


def test_check_config_refuses_a_vendor_without_its_key(deepgram_without_key: Path) -> None:
    result = _cli("check-config", str(deepgram_without_key), cwd=deepgram_without_key.parent)
    assert result.returncode == 2, result.stderr
    assert "[stt] api_key" in result.stderr and "DEEPGRAM_API_KEY" in result.stderr
    assert "OK" not in result.stdout


def test_check_config_names_urls_and_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    config = parse_config(
        {
            "persistence": {"data_dir": str(blocker / "data"), "backend_url": "http://:80"},
            "llm": {"provider": "openai", "base_url": "http://127.0.0.1:99999/v1"},
            "redis": {"url": "unix:///run/redis.sock"},
        },
        environ={},
    )
    problems = config_problems(config)
    assert len(problems) == 3, problems
    assert "[persistence] backend_url" in problems[0] and "no host" in problems[0]
    assert "[llm] base_url" in problems[1] and "does not parse" in problems[1]
    assert "[persistence] data_dir" in problems[2] and "not a directory" in problems[2]


def test_check_config_takes_openai_with_a_base_url_and_no_key() -> None:
    config = parse_config(
        {"llm": {"provider": "openai", "base_url": "http://127.0.0.1:8000/v1"}}, environ={}
    )
    assert config_problems(config) == []


@pytest.mark.parametrize("workers", [0, 1])
def test_run_exits_2_at_once_when_a_room_host_cannot_start(
    deepgram_without_key: Path, workers: int
) -> None:
    text = deepgram_without_key.read_text() + f"[supervisor]\nworkers = {workers}\n"
    deepgram_without_key.write_text(text)
    result = _cli("run", "--config", str(deepgram_without_key), cwd=deepgram_without_key.parent)
    assert result.returncode == 2, result.stderr
    assert result.stderr.rstrip().endswith(
        "error: [stt] api_key is not set: export DEEPGRAM_API_KEY (or set it)"
    )
    assert "room host ended; restarting" not in result.stderr
    assert "Traceback" not in result.stderr
