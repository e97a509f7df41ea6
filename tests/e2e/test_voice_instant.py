"""The voice pipeline end to end with zero-latency fakes: turn taking, captions, barge-in, chat."""

from __future__ import annotations

import pytest
from livekit import api

from actors.room import Providers
from tests.e2e.conftest import VoiceRig, start_room, tone
from tests.harness.caller import caller
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AGENT = "voice-agent"


async def test_a_spoken_turn_gets_an_answer_with_captions_and_audio(
    rig: VoiceRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    await start_room(lkapi, rig, "v-turn")
    rig.stt.script.append("turn on the lights")
    async with caller(livekit_server, "v-turn", "alice") as alice:
        await alice.wait_for(
            lambda: "Hi, how can I help?" in alice.finals(AGENT),
            deadline_s=10,
            what="greeting caption",
        )
        await alice.say(tone(0.8), 48_000)
        await alice.wait_for(
            lambda: "You said: turn on the lights." in alice.finals(AGENT),
            deadline_s=10,
            what="agent answer caption",
        )
        assert "turn on the lights" in alice.finals("alice")
        user_caption = next(c for c in alice.captions if c.sender == "alice" and c.final)
        assert user_caption.track_sid.startswith("TR_")
        agent_caption = next(c for c in alice.captions if c.sender == AGENT and c.final)
        assert agent_caption.track_sid.startswith("TR_")
        # The agent's audio reached the caller: 150 ms of tone per word of its answers.
        await alice.wait_for(
            lambda: len(alice.agent_pcm()) > 16_000 * 2 * 1.5, deadline_s=10, what="agent audio"
        )
    turns = await poll_until(
        lambda: (m := rig.store.recent_messages("c-v-turn", 10)) and len(m) >= 3 and m,
        deadline_s=5,
        what="turns stored",
    )
    assert [(t["role"], t["content"], t["speaker"]) for t in turns[:3]] == [
        ("assistant", "Hi, how can I help?", None),
        ("user", "turn on the lights", "alice"),
        ("assistant", "You said: turn on the lights.", None),
    ]
    stored = rig.store.events(["turn"])
    answer = next(e for e in stored if e["data"]["content"] == "You said: turn on the lights.")
    latency = answer["data"]["latency_ms"]
    assert set(latency) >= {"llm_first_token", "tts_first_audio", "agent_added"}
    assert 0 <= latency["agent_added"] < 500


async def test_barge_in_cuts_the_reply_and_records_what_was_said(
    rig: VoiceRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    rig.tts.ms_per_word = 400  # a long answer to talk over
    await start_room(lkapi, rig, "v-barge")
    rig.stt.script.extend(["tell me a long story about the sea and the ships", "stop"])
    async with caller(livekit_server, "v-barge", "bob") as bob:
        await bob.wait_for(lambda: bool(bob.finals(AGENT)), deadline_s=10, what="greeting")
        await bob.say(tone(0.6), 48_000)
        assert rig.daemon.registry is not None
        voice = rig.daemon.registry.handle("v-barge")
        assert voice is not None
        await poll_until(
            lambda: (
                any(
                    c.sender == AGENT and not c.final and "long story" in c.text
                    for c in bob.captions
                )
                or _speaking(rig, "v-barge")
            ),
            deadline_s=10,
            what="agent speaking",
        )
        await bob.say(tone(0.6), 48_000)
        await poll_until(
            lambda: len(rig.store.recent_messages("c-v-barge", 10)) >= 5,
            deadline_s=10,
            what="turns",
        )
    turns = rig.store.recent_messages("c-v-barge", 10)
    story = next(
        t
        for t in turns
        if t["role"] == "assistant"
        and "story" in t["content"]
        or t["role"] == "assistant"
        and t["interrupted"]
    )
    assert story["interrupted"] is True
    full = "You said: tell me a long story about the sea and the ships."
    assert len(story["content"]) < len(full)
    assert full.startswith(story["content"])
    assert turns[-2]["role"] == "user" and turns[-2]["content"] == "stop"


def _speaking(rig: VoiceRig, room: str) -> bool:
    return bool(rig.tts.texts and "story" in rig.tts.texts[-1])


async def test_chat_text_is_a_user_turn(
    rig: VoiceRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    await start_room(lkapi, rig, "v-chat")
    async with caller(livekit_server, "v-chat", "carol") as carol:
        await carol.wait_for(lambda: bool(carol.finals(AGENT)), deadline_s=10, what="greeting")
        await carol.room.local_participant.send_text("what time is it", topic="lk.chat")
        await carol.wait_for(
            lambda: "You said: what time is it." in carol.finals(AGENT),
            deadline_s=10,
            what="answer to chat",
        )
    turns = await poll_until(
        lambda: (m := rig.store.recent_messages("c-v-chat", 10)) and len(m) >= 3 and m,
        deadline_s=5,
        what="turns stored",
    )
    assert ("user", "what time is it", "carol") in [
        (t["role"], t["content"], t["speaker"]) for t in turns
    ]


async def test_two_callers_are_attributed_to_the_right_speaker(
    rig: VoiceRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    rig.daemon.providers = Providers(rig.stt, rig.llm, rig.tts)  # no greeting
    await start_room(lkapi, rig, "v-two")
    async with (
        caller(livekit_server, "v-two", "dave") as dave,
        caller(livekit_server, "v-two", "erin") as erin,
    ):
        rig.stt.script.append("first from dave")
        await dave.say(tone(0.6), 48_000)
        await dave.wait_for(
            lambda: "You said: first from dave." in dave.finals(AGENT),
            deadline_s=10,
            what="answer to dave",
        )
        rig.stt.script.append("then erin")
        await erin.say(tone(0.6), 48_000)
        await erin.wait_for(
            lambda: "You said: then erin." in erin.finals(AGENT),
            deadline_s=10,
            what="answer to erin",
        )
    turns = rig.store.recent_messages("c-v-two", 10)
    users = [(t["speaker"], t["content"]) for t in turns if t["role"] == "user"]
    assert users == [("dave", "first from dave"), ("erin", "then erin")]
