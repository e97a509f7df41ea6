"""Turn-taking with the shipped local providers (Silero VAD, pocketsphinx, the end-of-turn rule,
the scripted LLM, hibari) in a real room: a thinking pause is not the end of a turn, an "uh-huh"
over the agent does not stop it, and a real barge-in still does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import hibari
import numpy as np
import pytest
from livekit import api
from prometheus_client import REGISTRY

from actors.persistence import EmbeddedStore
from supervisor import Daemon
from tests.conftest import daemon_config, room_metadata
from tests.harness.caller import Caller, caller
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AGENT = "voice-agent"
RATE = 24_000
STORY = (
    "Once upon a time a small boat left the harbour at dawn. The sea was calm and the sky "
    "was grey. After a few hours the wind rose and the waves grew tall."
)


@dataclass
class Local:
    daemon: Daemon
    store: EmbeddedStore


@pytest.fixture
async def local(
    livekit_server: LiveKitServer, webhook_port: int, tmp_path: Path
) -> AsyncIterator[Local]:
    config = daemon_config(
        livekit_server,
        webhook_port,
        tmp_path / "data",
        voice={"enabled": True},
        llm={"greeting": "", "rules": [{"match": "story", "reply": STORY}]},
    )
    daemon = Daemon(config)  # providers from the config: the offline defaults
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        yield Local(daemon, EmbeddedStore(config.persistence.store_path))
        daemon.request_stop()


async def open_room(lkapi: api.LiveKitAPI, rig: Local, name: str) -> None:
    await lkapi.room.create_room(
        api.CreateRoomRequest(name=name, metadata=room_metadata(conversation_id=f"c-{name}"))
    )
    registry = rig.daemon.registry
    assert registry is not None
    await poll_until(lambda: name in registry.joined, deadline_s=10, what="agent joined")


def voice(text: str) -> np.ndarray:
    audio = hibari.Hibari()(text, seed=1)
    pcm: np.ndarray = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    return pcm


def voiced_between(bot: Caller, t0: float, t1: float) -> list[float]:
    return [t for t in bot.voiced_at if t0 <= t < t1]


async def agent_talking_for(bot: Caller, since: float, seconds: float) -> None:
    """Until the agent's voice has been heard for ``seconds`` after ``since``."""
    await poll_until(
        lambda: (
            (heard := voiced_between(bot, since, float("inf"))) and heard[-1] - heard[0] >= seconds
        ),
        deadline_s=15,
        what="the agent talking",
    )


async def test_a_thinking_pause_gets_no_reply_until_the_caller_finishes(
    local: Local, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    await open_room(lkapi, local, "tt-pause")
    head, tail = voice("my flight was cancelled and"), voice("i need to book another one")
    pause = np.zeros(int(0.7 * RATE), np.int16)
    async with caller(livekit_server, "tt-pause", "pat") as pat:
        # A first question: pocketsphinx adapts to a voice over its first utterance (cepstral
        # mean), and mishears more of that one.
        await pat.say(voice("what time does the last train leave the station").tobytes(), RATE)
        await pat.wait_for(lambda: bool(pat.finals(AGENT)), deadline_s=15, what="first answer")
        await poll_until(
            lambda: anyio.current_time() - pat.voiced_at[-1] > 1.0,
            deadline_s=15,
            what="the first answer played",
        )
        await pat.say(np.concatenate([head, pause, tail]).tobytes(), RATE)
        done = anyio.current_time()
        head_end = done - (len(tail) + len(pause)) / RATE
        await pat.wait_for(lambda: len(pat.finals(AGENT)) > 1, deadline_s=15, what="the answer")
        # Nothing from the agent while the caller paused or finished the sentence.
        assert voiced_between(pat, head_end, done) == [], pat.finals("pat")
        assert len(pat.finals("pat")) == 2, pat.finals("pat")
        answer = pat.finals(AGENT)[1]
        assert answer.startswith("You said: ") and ("book" in answer or "another" in answer)
    stored = await poll_until(
        lambda: (
            (a := [e for e in local.store.events(["turn"]) if e["data"]["role"] == "assistant"])
            and len(a) >= 2
            and a
        ),
        deadline_s=10,
        what="the answer stored",
    )
    latency = stored[-1]["data"]["latency_ms"]
    assert set(latency) >= {
        "end_of_turn",
        "stt_final",
        "llm_first_token",
        "tts_first_audio",
        "agent_added",
        "voice_to_voice",
    }
    # The thinking pause (700 ms) was waited out, within max_endpointing_ms.
    assert 0 < latency["end_of_turn"] < 2500


def resumed() -> float:
    """False interruptions resumed so far (rooms run in this process: workers = 0)."""
    return REGISTRY.get_sample_value("voice_supervisor_false_interruptions_total") or 0.0


async def test_a_backchannel_pauses_the_agent_which_resumes_but_a_barge_in_cuts_it(
    local: Local, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    await open_room(lkapi, local, "tt-backchannel")
    ask = voice("please tell me a story about the sea")
    async with caller(livekit_server, "tt-backchannel", "kim") as kim:
        await kim.say(ask.tobytes(), RATE)
        await agent_talking_for(kim, kim.spoke_at, 1.0)
        before = resumed()
        await kim.say(voice("uh-huh").tobytes(), RATE)
        await poll_until(
            lambda: len(local.store.recent_messages("c-tt-backchannel", 10)) >= 2,
            deadline_s=30,
            what="the story told",
        )
        story = local.store.recent_messages("c-tt-backchannel", 10)[-1]
        assert story["role"] == "assistant" and story["interrupted"] is False
        assert story["content"] == STORY
        # It went quiet for the "uh-huh", then resumed where it stopped.
        assert resumed() == before + 1
        # "Uh-huh" was not taken as a turn to answer either.
        assert [m["role"] for m in local.store.recent_messages("c-tt-backchannel", 10)] == [
            "user",
            "assistant",
        ]

        await kim.say(ask.tobytes(), RATE)
        await agent_talking_for(kim, kim.spoke_at, 1.0)
        await kim.say(voice("wait, stop, i have a different question").tobytes(), RATE)
        turns = await poll_until(
            lambda: (
                (m := local.store.recent_messages("c-tt-backchannel", 10)) and len(m) >= 6 and m
            ),
            deadline_s=30,
            what="the barge-in answered",
        )
    cut = turns[3]
    assert cut["role"] == "assistant" and cut["interrupted"] is True
    assert STORY.startswith(cut["content"]) and len(cut["content"]) < len(STORY)
    assert turns[4]["role"] == "user" and turns[5]["role"] == "assistant"
