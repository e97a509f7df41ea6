"""Fixtures of the voice e2e tests: the daemon with zero-latency fake providers."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import numpy as np
import pytest
from livekit import api

from actors.persistence import EmbeddedStore
from actors.room import Providers
from supervisor import Daemon
from tests.conftest import daemon_config, room_metadata
from tests.fakes.instant import EchoLlm, InstantStt, ToneTts
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until


def tone(seconds: float, rate: int = 48_000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * math.pi * 300 * t) * 9000).astype(np.int16).tobytes()


@dataclass
class VoiceRig:
    daemon: Daemon
    stt: InstantStt
    llm: EchoLlm
    tts: ToneTts
    store: EmbeddedStore


@pytest.fixture
async def rig(
    livekit_server: LiveKitServer, webhook_port: int, tmp_path: Path
) -> AsyncIterator[VoiceRig]:
    stt, llm, tts = InstantStt(), EchoLlm(), ToneTts(ms_per_word=150)
    config = daemon_config(
        livekit_server,
        webhook_port,
        tmp_path / "data",
        voice={"enabled": True, "min_interrupt_s": 0.3},
    )
    daemon = Daemon(config, providers=Providers(stt, llm, tts, greeting="Hi, how can I help?"))
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        yield VoiceRig(daemon, stt, llm, tts, EmbeddedStore(config.persistence.store_path))
        daemon.request_stop()


async def start_room(lkapi: api.LiveKitAPI, rig: VoiceRig, name: str) -> None:
    await lkapi.room.create_room(
        api.CreateRoomRequest(
            name=name, metadata=room_metadata(conversation_id=f"c-{name}", user_id="u")
        )
    )
    registry = rig.daemon.registry
    assert registry is not None
    await poll_until(lambda: name in registry.joined, deadline_s=10, what="agent joined")
