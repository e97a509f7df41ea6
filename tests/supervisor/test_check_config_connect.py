"""``check-config --connect`` and ``--bind-check`` against the real services the tests run: the
session's livekit-server, a redis-server, the reference backend over HTTP and the OpenAI fake;
each refusal names the setting (and the variable) to fix, and the command exits 2."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from supervisor._config import Config, parse_config
from supervisor._connect import connect_checks
from supervisor._preflight import bind_problem
from tests.failover._redis_server import RedisServer
from tests.fakes.backend import FaultyBackend, running_backend
from tests.fakes.fixtures import openai_fake
from tests.fakes.openai_fake import OpenAiFake
from tests.harness.livekit_server import LiveKitServer, free_port

__all__ = ("openai_fake",)

pytestmark = [pytest.mark.e2e]

_TOKEN = "backend-token-0123456789"
_SECRET_VARS = (
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "BACKEND_TOKEN",
    "DEEPGRAM_API_KEY",
    "OPENAI_API_KEY",
    "CARTESIA_API_KEY",
    "REDIS_URL",
)


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[FaultyBackend]:
    async with running_backend(tmp_path / "backend.sqlite3", token=_TOKEN) as served:
        yield served


def _config_file(tmp_path: Path, livekit: str, backend: str, redis: str, llm: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[livekit]\nurl = "{livekit}"\napi_key = "devkey"\n'
        f"[server]\nport = {free_port()}\n"
        f'[persistence]\ndata_dir = "{tmp_path / "data"}"\nbackend_url = "{backend}"\n'
        f'[redis]\nurl = "{redis}"\n'
        f'[llm]\nprovider = "openai"\nbase_url = "{llm}"\nfallback = ["scripted"]\n',
        encoding="utf-8",
    )
    return path


async def _check_config(path: Path, secrets: dict[str, str], *flags: str) -> tuple[int, str, str]:
    # As an operator runs it: a process of its own, with the secrets in its environment.
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_VARS} | secrets
    done = await anyio.run_process(
        [sys.executable, "-m", "supervisor", "check-config", str(path), *flags],
        env=env,
        cwd=path.parent,
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_connect_passes_when_every_service_takes_the_config(
    livekit_server: LiveKitServer,
    backend: FaultyBackend,
    redis_server: RedisServer,
    openai_fake: OpenAiFake,
    tmp_path: Path,
) -> None:
    path = _config_file(
        tmp_path, livekit_server.ws_url, backend.url, redis_server.url, openai_fake.base_url
    )
    secrets = {
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "BACKEND_TOKEN": _TOKEN,
        "OPENAI_API_KEY": openai_fake.api_key,
    }
    status, out, err = await _check_config(path, secrets, "--connect", "--bind-check")
    assert status == 0, err
    oks = [line.split(":", 2)[1].strip() for line in out.splitlines() if line.startswith("ok:")]
    assert oks == [
        "[server] 127.0.0.1",
        "[livekit] url",
        "[persistence] backend_url",
        "[redis] url",
        "[llm] openai",  # the network provider; scripted (local) needs no connection
    ]
    assert out.rstrip().endswith(f"{path}: OK")
    # The backend got one empty batch, with the token, and stored nothing.
    (probe,) = backend.batch_requests()
    assert probe.body == b'{"events": []}' and probe.status == 200
    assert probe.headers["Authorization"] == f"Bearer {_TOKEN}"
    assert backend.store.events() == []
    assert openai_fake.requests[0]["messages"][-1]["content"] == "ping"


async def test_connect_names_the_setting_of_each_refusal(
    livekit_server: LiveKitServer,
    backend: FaultyBackend,
    openai_fake: OpenAiFake,
    tmp_path: Path,
) -> None:
    nothing = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there
    path = _config_file(tmp_path, livekit_server.ws_url, backend.url, nothing, openai_fake.base_url)
    secrets = {
        "LIVEKIT_API_SECRET": "not-the-server-secret-0123456789abcdef",
        "BACKEND_TOKEN": "not-the-token",
        "OPENAI_API_KEY": "sk-wrong",
    }
    status, out, err = await _check_config(path, secrets, "--connect")
    assert status == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 4, err
    livekit, backend_error, redis, llm = errors
    assert "LIVEKIT_API_SECRET" in livekit and "HTTP 401" in livekit
    assert "[persistence] backend_url" in backend_error and "BACKEND_TOKEN" in backend_error
    assert "[redis] url" in redis and "unreachable" in redis
    assert "hunter2" not in err and "redis://:***@127.0.0.1" in redis
    assert "[llm] openai" in llm and "OPENAI_API_KEY" in llm
    assert "OK" not in out
    assert backend.store.events() == []


async def test_connect_tells_an_absent_server_from_one_that_is_not_livekit(
    tmp_path: Path,
) -> None:
    def config(url: str) -> Config:
        return parse_config(
            {
                "livekit": {"url": url, "api_secret": "s" * 40},
                "persistence": {"data_dir": str(tmp_path)},
            },
            environ={},
        )

    (absent,) = await connect_checks(config(f"ws://127.0.0.1:{free_port()}"))
    assert not absent.ok and "[livekit] url" in absent.detail and "nothing answers" in absent.detail
    async with running_backend(tmp_path / "backend.sqlite3") as not_livekit:
        (other,) = await connect_checks(config(not_livekit.url))
    assert not other.ok and "no LiveKit room service there (HTTP 404)" in other.detail


async def test_connect_names_an_unreachable_backend(
    livekit_server: LiveKitServer, tmp_path: Path
) -> None:
    config = parse_config(
        {
            "livekit": {
                "url": livekit_server.ws_url,
                "api_key": livekit_server.api_key,
                "api_secret": livekit_server.api_secret,
            },
            "persistence": {
                "data_dir": str(tmp_path),
                "backend_url": f"http://127.0.0.1:{free_port()}",
            },
        },
        environ={},
    )
    livekit, backend = await connect_checks(config)
    assert livekit.ok, livekit.detail
    assert not backend.ok
    assert "unreachable; check [persistence] backend_url" in backend.detail


def test_bind_check_refuses_a_port_in_use_and_takes_a_free_one(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = parse_config({"server": {"port": port}}, environ={})
        problem = bind_problem(busy.server)
        assert problem is not None
        assert f"[server] host = '127.0.0.1', port = {port}" in problem
        assert "in use by another process" in problem
    assert bind_problem(busy.server) is None  # released: free again
    assert bind_problem(parse_config({"server": {"port": 0}}, environ={}).server) is None
    elsewhere = parse_config(
        {"server": {"host": "192.0.2.1", "port": port}, "livekit": {"api_secret": "s" * 40}},
        environ={},
    )
    assert "not an address of this machine" in (bind_problem(elsewhere.server) or "")
