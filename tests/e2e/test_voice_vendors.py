"""The pipeline through the official Deepgram, OpenAI and Cartesia SDKs, against local fakes
of their wire protocols; and what a room does when a provider fails or stalls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from livekit import api

from actors.persistence import EmbeddedStore
from supervisor import Daemon
from tests.conftest import daemon_config, room_metadata
from tests.e2e.conftest import tone
from tests.fakes.cartesia_fake import CartesiaFake
from tests.fakes.deepgram_fake import DeepgramFake
from tests.fakes.fixtures import cartesia_fake, deepgram_fake, openai_fake
from tests.fakes.openai_fake import OpenAiFake
from tests.harness.caller import caller
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

__all__ = ("cartesia_fake", "deepgram_fake", "openai_fake")

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AGENT = "voice-agent"


def vendor_sections(dg: DeepgramFake, oa: OpenAiFake, ct: CartesiaFake) -> dict[str, Any]:
    return {
        "voice": {"enabled": True},
        "stt": {
            "provider": "deepgram",
            "deepgram_url": dg.url,
            "api_key": dg.api_key,
            "endpointing_ms": 300,
        },
        "llm": {
            "provider": "openai",
            "base_url": oa.base_url,
            "api_key": oa.api_key,
            "greeting": "",
            "timeout_s": 1.0,
        },
        "tts": {
            "provider": "cartesia",
            "voice": "voice-1",
            "cartesia_url": ct.url,
            "api_key": ct.api_key,
            "timeout_s": 1.0,
        },
    }


@asynccontextmanager
async def run_daemon(
    config_sections: dict[str, Any], server: LiveKitServer, port: int, data: Path
) -> AsyncIterator[tuple[Daemon, EmbeddedStore]]:
    config = daemon_config(server, port, data, **config_sections)
    daemon = Daemon(config)
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        yield daemon, EmbeddedStore(config.persistence.store_path)
        daemon.request_stop()


async def open_room(lkapi: api.LiveKitAPI, daemon: Daemon, name: str) -> None:
    await lkapi.room.create_room(
        api.CreateRoomRequest(name=name, metadata=room_metadata(conversation_id=f"c-{name}"))
    )
    registry = daemon.registry
    assert registry is not None
    await poll_until(lambda: name in registry.joined, deadline_s=10, what="agent joined")


async def test_deepgram_openai_and_cartesia_through_their_sdks(
    deepgram_fake: DeepgramFake,
    openai_fake: OpenAiFake,
    cartesia_fake: CartesiaFake,
    livekit_server: LiveKitServer,
    lkapi: api.LiveKitAPI,
    webhook_port: int,
    tmp_path: Path,
) -> None:
    deepgram_fake.transcripts.append("book a table for two")
    openai_fake.replies.append("Sure, a table for two. Anything else?")
    sections = vendor_sections(deepgram_fake, openai_fake, cartesia_fake)
    async with run_daemon(sections, livekit_server, webhook_port, tmp_path / "data") as (
        daemon,
        store,
    ):
        await open_room(lkapi, daemon, "vendors")
        async with caller(livekit_server, "vendors", "quinn") as quinn:
            await quinn.say(tone(0.8), 48_000)
            await quinn.wait_for(
                lambda: "Sure, a table for two. Anything else?" in quinn.finals(AGENT),
                deadline_s=15,
                what="answer through the vendor fakes",
            )
            assert "book a table for two" in quinn.finals("quinn")
            await quinn.wait_for(
                lambda: len(quinn.agent_pcm()) > 16_000, deadline_s=10, what="Cartesia audio heard"
            )
        # What the vendors were sent: the user's words reached the LLM, the LLM's the TTS.
        messages = openai_fake.requests[-1]["messages"]
        assert messages[-1]["content"] == "book a table for two"
        assert messages[-1]["role"] == "user" and messages[-1].get("name") == "quinn"
        assert messages[0]["role"] == "system"
        spoken = " ".join(r.get("transcript", "") for r in cartesia_fake.requests)
        assert "Sure, a table for two." in spoken
        assert deepgram_fake.audio_bytes > 16_000
        # Deepgram sent the turn as several final segments, as the service does.
        segments = [
            m
            for m in deepgram_fake.sent
            if m["type"] == "Results" and m["is_final"] and m["channel"]["alternatives"][0]["words"]
        ]
        assert len(segments) >= 2


async def test_a_strict_server_behind_a_greeting_through_compat_strict(
    deepgram_fake: DeepgramFake,
    openai_fake: OpenAiFake,
    cartesia_fake: CartesiaFake,
    livekit_server: LiveKitServer,
    lkapi: api.LiveKitAPI,
    webhook_port: int,
    tmp_path: Path,
) -> None:
    # A Mistral template on vLLM behind a gateway: no ``name``, roles strictly alternating,
    # while the room's history starts with the agent's greeting.
    openai_fake.refuse_name = openai_fake.strict_roles = True
    deepgram_fake.transcripts.append("what are your opening hours")
    openai_fake.replies.append("We open at nine.")
    sections = vendor_sections(deepgram_fake, openai_fake, cartesia_fake)
    sections["llm"] |= {"compat": "strict", "greeting": "Welcome to the bistro."}
    async with run_daemon(sections, livekit_server, webhook_port, tmp_path / "data") as (
        daemon,
        store,
    ):
        await open_room(lkapi, daemon, "strict")
        async with caller(livekit_server, "strict", "uma") as uma:
            await uma.wait_for(
                lambda: "Welcome to the bistro." in uma.finals(AGENT),
                deadline_s=10,
                what="greeting",
            )
            await uma.say(tone(0.8), 48_000)
            await uma.wait_for(
                lambda: "We open at nine." in uma.finals(AGENT),
                deadline_s=15,
                what="answer from the strict server",
            )
    assert openai_fake.refusals == []
    messages = openai_fake.requests[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "Welcome to the bistro." in messages[0]["content"]
    assert messages[1]["content"] == "uma: what are your opening hours"


async def test_a_failing_llm_gets_an_apology_and_the_room_keeps_working(
    deepgram_fake: DeepgramFake,
    openai_fake: OpenAiFake,
    cartesia_fake: CartesiaFake,
    livekit_server: LiveKitServer,
    lkapi: api.LiveKitAPI,
    webhook_port: int,
    tmp_path: Path,
) -> None:
    openai_fake.fail_status = 500
    sections = vendor_sections(deepgram_fake, openai_fake, cartesia_fake)
    async with run_daemon(sections, livekit_server, webhook_port, tmp_path / "data") as (
        daemon,
        store,
    ):
        await open_room(lkapi, daemon, "llm-down")
        apology = daemon.config.voice.apology
        async with caller(livekit_server, "llm-down", "rita") as rita:
            deepgram_fake.transcripts.append("hello there")
            await rita.say(tone(0.6), 48_000)
            await rita.wait_for(
                lambda: apology in rita.finals(AGENT), deadline_s=10, what="apology"
            )
            # From the user's final transcript to the apology's first words: under 2 s.
            took = rita.started_at(AGENT, apology) - rita.final_at("rita", "hello there")
            assert took < 2.0, took
            openai_fake.fail_status = None  # the vendor recovers; so does the room
            openai_fake.replies.append("Back again.")
            await rita.say(tone(0.6), 48_000)
            await rita.wait_for(
                lambda: "Back again." in rita.finals(AGENT),
                deadline_s=10,
                what="answer after recovery",
            )


async def test_a_stalling_llm_falls_back_to_the_scripted_one_in_time(
    deepgram_fake: DeepgramFake,
    openai_fake: OpenAiFake,
    cartesia_fake: CartesiaFake,
    livekit_server: LiveKitServer,
    lkapi: api.LiveKitAPI,
    webhook_port: int,
    tmp_path: Path,
) -> None:
    openai_fake.first_token_delay_s = 30  # stalls
    deepgram_fake.transcripts.append("are you there")
    sections = vendor_sections(deepgram_fake, openai_fake, cartesia_fake)
    sections["llm"] |= {"fallback": ["scripted"], "timeout_s": 0.5}
    async with run_daemon(sections, livekit_server, webhook_port, tmp_path / "data") as (
        daemon,
        store,
    ):
        await open_room(lkapi, daemon, "llm-slow")
        async with caller(livekit_server, "llm-slow", "sam") as sam:
            await sam.say(tone(0.6), 48_000)
            answer = "You said: are you there"
            await sam.wait_for(
                lambda: answer in sam.finals(AGENT), deadline_s=10, what="scripted fallback answer"
            )
            took = sam.started_at(AGENT, answer) - sam.final_at("sam", "are you there")
            assert took < 2.0, took
