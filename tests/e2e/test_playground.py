"""The playground in a real browser: Debian's headless Chromium, driven by Playwright, opens
/playground on the daemon, joins a room over WebRTC to the test livekit-server, speaks a WAV
made with hibari-tts through the fake microphone, and sees the agent's answer in the captions
and in the stored messages; then chat, a command and a file through the page.

Never skips: without Chromium or Playwright the test fails and says what to install. The
browser is kept off the network (host resolver rules: only 127.0.0.1 resolves).
"""

from __future__ import annotations

import os
import shutil
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import hibari
import httpx
import numpy as np
import pytest
import soxr
from livekit import api
from playwright.async_api import Browser, ConsoleMessage, async_playwright, expect

from actors.persistence import EmbeddedStore
from supervisor import Daemon
from tests.conftest import ARTIFACTS, daemon_config
from tests.harness.livekit_server import LiveKitServer

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

QUESTION = "could you tell me what time the pharmacy opens tomorrow"
CHAT = "hello from the chat box"
MIC_RATE = 48_000
LEAD_SILENCE_S = 3.0  # the agent greets first; the question comes after its greeting
TAIL_SILENCE_S = 1.0
# Deadlines sized for a busy 2-core machine (other test suites may run at the same time).
JOIN_MS = 30_000  # token, room, WebRTC, microphone
TURN_MS = 45_000  # one spoken turn: recognition, reply, speech
REPLY_MS = 15_000  # an agent.reply to a command or a file


def chromium_executable() -> str:
    """Debian's Chromium (package ``chromium``); never a downloaded browser build."""
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "the playground test needs Debian's chromium: apt-get install chromium "
        "(scripts/install-system-deps.sh installs it)"
    )


def chromium_args(wav: Path) -> list[str]:
    return [
        # A microphone without a person: permission granted, the WAV played once, then silence.
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
        "--autoplay-policy=no-user-gesture-required",
        # WebRTC to a livekit-server on 127.0.0.1: loopback ICE candidates are off by default.
        "--allow-loopback-in-peer-connection",
        # Off the network: nothing but 127.0.0.1 resolves, and no background services.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-domain-reliability",
        "--no-pings",
        "--no-first-run",
    ]


def speech_wav(path: Path, text: str) -> Path:
    """``text`` spoken by hibari-tts as a 48 kHz mono 16-bit WAV, with silence around it."""
    voice = np.asarray(hibari.Hibari()(text), dtype=np.float32)
    samples = soxr.resample(np.clip(voice, -1, 1), 24_000, MIC_RATE)
    pcm = (samples * 32767).astype(np.int16)
    lead = np.zeros(int(LEAD_SILENCE_S * MIC_RATE), dtype=np.int16)
    tail = np.zeros(int(TAIL_SILENCE_S * MIC_RATE), dtype=np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(MIC_RATE)
        out.writeframes(np.concatenate([lead, pcm, tail]).tobytes())
    return path


def words(text: str) -> set[str]:
    return {w.strip(".,!?:").lower() for w in text.split() if w.strip(".,!?:")}


@pytest.fixture
async def playground_daemon(
    livekit_server: LiveKitServer, webhook_port: int, tmp_path: Path
) -> AsyncIterator[Daemon]:
    config = daemon_config(
        livekit_server,
        webhook_port,
        tmp_path / "data",
        voice={"enabled": True},
        playground={"enabled": True},
    )
    daemon = Daemon(config)  # the offline providers: pocketsphinx, scripted LLM, hibari
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        yield daemon
        daemon.request_stop()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    executable = chromium_executable()
    # hibari runs in a thread: the daemon's rooms share this event loop.
    wav = await anyio.to_thread.run_sync(speech_wav, tmp_path / "question.wav", QUESTION)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=chromium_args(wav)
        )
        try:
            yield browser
        finally:
            await browser.close()


async def test_a_browser_talks_to_the_agent_through_the_playground(
    lkapi: api.LiveKitAPI,  # first: its teardown deletes the room after the daemon stopped
    playground_daemon: Daemon,
    browser: Browser,
    webhook_port: int,
    tmp_path: Path,
) -> None:
    page = await browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda msg: _keep_errors(msg, problems))
    await page.goto(f"http://127.0.0.1:{webhook_port}/playground")
    await expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=JOIN_MS)

    # Join: a token, a room with the agent, the fake microphone published.
    await page.locator("#name").fill("Pat")
    await page.locator("#start").click()
    await expect(page.locator("#status")).to_have_attribute(
        "data-status", "connected", timeout=JOIN_MS
    )
    await expect(page.locator("#agent-state")).to_have_attribute(
        "data-state", "listening", timeout=TURN_MS
    )
    conversation_id = await page.locator("#conversation-id").inner_text()

    # The spoken question: the user's final caption, then the agent's answer.
    agent_finals = page.locator('#captions li[data-speaker="agent"][data-final="true"]')
    answer = agent_finals.filter(has_text="You said:").first
    await expect(answer).to_be_visible(timeout=TURN_MS)
    heard = page.locator('#captions li[data-speaker="user"][data-final="true"]').first
    heard_text = await heard.locator(".text").inner_text()
    assert len(words(heard_text) & words(QUESTION)) >= len(words(QUESTION)) // 2, heard_text
    answer_text = await answer.locator(".text").inner_text()
    assert answer_text.startswith("You said: ")
    identity = await heard.get_attribute("data-identity")
    await expect(page.locator("#agent-state")).to_have_attribute(
        "data-state", "listening", timeout=TURN_MS
    )

    # Chat on lk.chat is a user turn too; a command and a file are answered on agent.reply.
    await page.locator("#chat-text").fill(CHAT)
    await page.locator("#chat-form button").click()
    await expect(agent_finals.filter(has_text=f"You said: {CHAT}")).to_have_count(
        1, timeout=TURN_MS
    )
    await page.locator("#command").select_option("ping")
    await page.locator("#command-form button").click()
    ping_ok = page.locator('#replies li[data-ok="true"]', has_text="cmd-1")
    await expect(ping_ok).to_have_count(1, timeout=REPLY_MS)
    note = tmp_path / "note.txt"
    note.write_text("opening hours: nine to five\n")
    await page.locator("#file").set_input_files(note)
    await page.locator("#file-form button").click()
    file_ok = page.locator('#replies li[data-ok="true"]', has_text="note.txt")
    await expect(file_ok).to_have_count(1, timeout=REPLY_MS)
    await expect(page.locator("#agent-state")).to_have_attribute(
        "data-state", "listening", timeout=TURN_MS
    )

    # The stored conversation, read through the page during the call, then the screenshot.
    await page.locator("#refresh").click()
    rows = page.locator("#messages tr[data-role]")
    await expect(rows.filter(has_text=f"You said: {CHAT}")).to_have_count(1, timeout=REPLY_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)

    # Leaving lists the stored messages again; they are the daemon's store's.
    await page.locator("#leave").click()
    await expect(page.locator("#status")).to_have_text("Call ended.", timeout=REPLY_MS)
    assert playground_daemon.persistence is not None
    store = EmbeddedStore(playground_daemon.config.persistence.store_path)
    try:
        stored = store.recent_messages(conversation_id, 50)
    finally:
        store.close()
    await expect(page.locator("#messages")).to_have_attribute(
        "data-loaded", str(len(stored)), timeout=REPLY_MS
    )
    replies = [m["content"] for m in stored if m["role"] == "assistant"]
    assert answer_text in replies and replies[-1] == f"You said: {CHAT}", replies
    assert {m["speaker"] for m in stored if m["role"] == "user"} == {identity}
    for message in stored:
        await expect(rows.filter(has_text=message["content"])).not_to_have_count(0)
    assert problems == []
    # From the page too, only conversations the playground opened can be read (after the
    # check above: Chromium logs the 404 as a console error).
    foreign = "fetch('/playground/conversations/c-not-mine/messages').then(r => r.status)"
    assert await page.evaluate(foreign) == 404


async def test_the_playground_is_off_unless_enabled(daemon: Daemon, webhook_port: int) -> None:
    assert not daemon.config.playground.enabled
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{webhook_port}") as client:
        assert (await client.get("/playground")).status_code == 404
        assert (await client.post("/playground/token", json={})).status_code == 404
        assert (await client.get("/playground/conversations/c/messages")).status_code == 404


def _keep_errors(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(f"console: {message.text}")
