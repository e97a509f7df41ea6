"""``voice-supervisor backend``: the reference backend as users run it, over real HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.streams.text import TextReceiveStream

from actors.persistence import EmbeddedStore
from tests.actors.persistence.conftest import turn

pytestmark = pytest.mark.anyio


async def test_the_backend_command_serves_the_contract(tmp_path: Path) -> None:
    db = tmp_path / "backend" / "backend.sqlite3"
    process = await anyio.open_process(
        [
            sys.executable,
            "-m",
            "supervisor",
            "backend",
            "--db",
            str(db),
            "--port",
            "0",
            "--token",
            "s3cret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = ""
        with anyio.fail_after(20):
            async for chunk in TextReceiveStream(process.stdout):
                line += chunk
                if "\n" in line:
                    break
        assert line.startswith("backend listening on http://127.0.0.1:")
        url = line.split()[-1]
        batch = {"events": [turn("conv-cli", i).to_json() for i in range(3)]}
        auth = {"Authorization": "Bearer s3cret"}
        async with httpx.AsyncClient(base_url=url, headers=auth) as client:
            first = await client.post("/v1/events:batch", json=batch)
            again = await client.post("/v1/events:batch", json=batch)
            joined = await client.post("/v1/rooms/room-9/agent-joined", json={"metadata": {}})
            messages = await client.get("/v1/conversations/conv-cli/messages?limit=2")
            anonymous = await client.get(
                "/v1/conversations/conv-cli/messages", headers={"Authorization": "Bearer no"}
            )
        assert first.json() == {"accepted": 3, "duplicates": 0}
        assert again.json() == {"accepted": 0, "duplicates": 3}
        assert joined.json()["conversation_id"].startswith("conv_")
        assert [m["content"] for m in messages.json()["messages"]] == ["turn 1", "turn 2"]
        assert anonymous.status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(10):
            await process.wait()
    assert process.returncode == 0
    store = EmbeddedStore(db)
    try:
        assert [e["id"] for e in store.events()] == [f"EV_{i:08d}" for i in range(3)]
    finally:
        store.close()
