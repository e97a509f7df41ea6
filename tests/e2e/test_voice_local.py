"""A real conversation with the embedded providers: hibari speech in, pocketsphinx, the
scripted LLM, hibari speech out; the caller's own recogniser checks what the agent said."""

from __future__ import annotations

from pathlib import Path

import anyio
import hibari
import numpy as np
import pytest
from livekit import api
from pocketsphinx import Decoder

from actors.persistence import EmbeddedStore
from supervisor import Daemon
from tests.conftest import daemon_config, room_metadata
from tests.harness.caller import caller
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AGENT = "voice-agent"
QUESTION = "could you tell me what time the pharmacy opens tomorrow"


def speech(text: str) -> tuple[bytes, int]:
    audio = hibari.Hibari()(text)
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes(), 24_000


def transcribe(pcm16k: bytes) -> str:
    decoder = Decoder(samprate=16_000, loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(bytes(9600) + pcm16k + bytes(9600), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return "" if hyp is None else str(hyp.hypstr)


def words(text: str) -> set[str]:
    return {w.strip(".,!?:").lower() for w in text.split() if w.strip(".,!?:")}


async def test_the_local_pipeline_holds_a_real_conversation(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> None:
    config = daemon_config(
        livekit_server,
        webhook_port,
        tmp_path / "data",
        voice={"enabled": True},
        llm={"greeting": ""},
    )
    daemon = Daemon(config)  # providers from the config: the offline defaults
    store = EmbeddedStore(config.persistence.store_path)
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        await lkapi.room.create_room(
            api.CreateRoomRequest(
                name="local-talk", metadata=room_metadata(conversation_id="c-local")
            )
        )
        registry = daemon.registry
        assert registry is not None
        await poll_until(lambda: "local-talk" in registry.joined, deadline_s=10, what="agent")
        pcm, rate = speech(QUESTION)
        async with caller(livekit_server, "local-talk", "pat") as pat:
            await pat.say(pcm, rate)
            await pat.wait_for(
                lambda: bool(pat.finals(AGENT)), deadline_s=20, what="the agent's answer caption"
            )
            heard = pat.finals("pat")[0]
            answer = pat.finals(AGENT)[0]
            # pocketsphinx understands hibari's voice nearly word for word.
            assert len(words(heard) & words(QUESTION)) >= len(words(QUESTION)) - 3, heard
            assert answer.startswith("You said: ")
            # Wait for the agent's audio to finish, then recognise it ourselves.
            await poll_until(
                lambda: (
                    registry.handle("local-talk") is not None
                    and len(store.recent_messages("c-local", 5)) >= 2
                ),
                deadline_s=20,
                what="answer recorded (played out)",
            )
            agent_words = transcribe(pat.agent_pcm())
        daemon.request_stop()
    # What the caller hears went through Opus and a jitter buffer, which conceals late
    # packets by stretching speech when this 2-core machine is loaded; the recogniser then
    # mishears some words (4 of 11 once). The answer's rarest word and a third of its
    # words still tell the agent's answer from anything else it could have said.
    overlap = words(agent_words) & words(answer)
    assert "pharmacy" in overlap, (agent_words, answer)
    assert len(overlap) >= len(words(answer)) // 3, (agent_words, answer)
    turns = store.recent_messages("c-local", 5)
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[0]["speaker"] == "pat"
