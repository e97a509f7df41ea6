"""A daemon with no LiveKit to reach: what an operator sees on its HTTP port before any room
(readyz while LiveKit is down, tool sources that are down)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx

from supervisor import Config, Daemon, parse_config
from tests.harness.livekit_server import free_port

__all__ = ("offline_config", "serving")


def offline_config(tmp_path: Path, **sections: Any) -> Config:
    """A config whose ``[livekit] url`` is a free port (nothing answers), serving on loopback,
    with its data under ``tmp_path``; ``sections`` (``supervisor={...}``, ...) are added."""
    base = {
        "livekit": {"url": f"ws://127.0.0.1:{free_port()}", "api_key": "k", "api_secret": "s" * 32},
        "server": {"host": "127.0.0.1", "port": free_port()},
        "persistence": {"data_dir": str(tmp_path / "data")},
    }
    return parse_config({**base, **sections}, environ={})


@asynccontextmanager
async def serving(daemon: Daemon) -> AsyncIterator[httpx.AsyncClient]:
    """``daemon`` running, and a client of its HTTP port; the daemon stops on exit."""
    async with anyio.create_task_group() as tg:
        info = await tg.start(daemon.run)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{info.port}") as http:
            yield http
        daemon.request_stop()
