"""Every heard turn gets an answer across a ``kill -9``: the daemon (a subprocess, the shipped
local providers) is killed between a caller's turn and its answer; the daemon started again on
the same data answers that stored turn, once, instead of greeting again."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import hibari
import numpy as np
import pytest
from livekit import api

from actors.persistence import EmbeddedStore
from tests.faults.daemon import config_toml, running_daemon
from tests.harness.caller import caller
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.anyio]

AGENT = "voice-agent"
ROOM = "fault-kill-resume"
GREETING = "Hello! How can I help you?"  # the shipped default
RATE = 24_000


def voice_config(server: LiveKitServer, port: int, data_dir: Path) -> str:
    """The supervision config with the voice on (the offline defaults) and a slow LLM: its
    words come 0.3 s apart, so the kill lands between the stored turn and its answer."""
    config = config_toml(server, port, data_dir, workers=0, reconcile_interval_s=2.0)
    assert "[voice]\nenabled = false" in config
    return config.replace("[voice]\nenabled = false", "[voice]\nenabled = true") + (
        "\n[llm]\ntoken_delay_s = 0.3\n"
    )


def messages(data_dir: Path) -> list[dict[str, Any]]:
    store = EmbeddedStore(data_dir / "store.sqlite3")
    try:
        return store.recent_messages(f"c-{ROOM}", 10)
    finally:
        store.close()


async def test_a_turn_left_unanswered_by_kill_9_is_answered_by_the_next_daemon(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> None:
    config = voice_config(livekit_server, webhook_port, tmp_path / "data")
    question = (
        np.clip(hibari.Hibari()("what time does the last train leave the station", seed=1), -1, 1)
        * 32767
    ).astype(np.int16)
    await lkapi.room.create_room(
        api.CreateRoomRequest(name=ROOM, metadata=json.dumps({"conversation_id": f"c-{ROOM}"}))
    )
    async with running_daemon(config, tmp_path, webhook_port) as first:
        await first.wait_line(
            lambda line: line.get("msg") == "room joined" and line.get("room") == ROOM,
            deadline_s=60,
            what="the agent joined",
        )
        async with caller(livekit_server, ROOM, "kim") as kim:
            await kim.wait_for(
                lambda: GREETING in kim.finals(AGENT), deadline_s=60, what="the greeting"
            )
            await kim.say(question.tobytes(), RATE)
            await poll_until(
                lambda: [m["role"] for m in messages(first.data_dir)] == ["assistant", "user"],
                deadline_s=20,
                what="the turn stored",
            )
            os.killpg(first.process.pid, signal.SIGKILL)  # before its answer is done
            assert await first.wait_exit(deadline_s=10) == -signal.SIGKILL
            assert [m["role"] for m in messages(first.data_dir)] == ["assistant", "user"]
            heard = messages(first.data_dir)[1]["content"]
            answer = f"You said: {heard}"

            # The same config and data, as a supervisor (systemd, a container) restarts it.
            async with running_daemon(config, tmp_path, webhook_port):
                await kim.wait_for(
                    lambda: answer in kim.finals(AGENT), deadline_s=60, what="the answer"
                )
                turns = await poll_until(
                    lambda: (m := messages(first.data_dir)) and len(m) >= 3 and m,
                    deadline_s=10,
                    what="the answer stored",
                )
    assert [(t["role"], t["content"]) for t in turns] == [
        ("assistant", GREETING),
        ("user", heard),
        ("assistant", answer),
    ]
    # Answered once, and no second greeting from the daemon that took over.
    assert kim.finals(AGENT).count(GREETING) == 1
    assert kim.finals(AGENT).count(answer) == 1
