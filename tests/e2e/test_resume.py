"""Every heard turn gets an answer: an actor that dies while answering leaves the turn stored,
and the actor that takes the room over answers it, once, instead of greeting."""

from __future__ import annotations

import pytest
from livekit import api

from tests.e2e.conftest import VoiceRig, start_room, tone
from tests.harness.caller import caller
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.anyio]

AGENT = "voice-agent"


async def test_a_turn_left_unanswered_by_a_crash_is_answered_after_the_restart(
    rig: VoiceRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    await start_room(lkapi, rig, "v-resume")
    rig.stt.script.append("what time is it")
    async with caller(livekit_server, "v-resume", "alice") as alice:
        await alice.wait_for(
            lambda: "Hi, how can I help?" in alice.finals(AGENT), deadline_s=10, what="greeting"
        )
        rig.llm.crash_next = True  # the actor dies between the turn and its answer
        await alice.say(tone(0.8), 48_000)
        await alice.wait_for(
            lambda: "You said: what time is it." in alice.finals(AGENT),
            deadline_s=20,
            what="the answer from the restarted actor",
        )
    turns = await poll_until(
        lambda: (m := rig.store.recent_messages("c-v-resume", 10)) and len(m) >= 3 and m,
        deadline_s=5,
        what="turns stored",
    )
    assert [(t["role"], t["content"]) for t in turns] == [
        ("assistant", "Hi, how can I help?"),
        ("user", "what time is it"),
        ("assistant", "You said: what time is it."),
    ]  # answered once, and no second greeting
    sessions = await poll_until(
        lambda: [s for s in rig.store.sessions() if s["room"] == "v-resume"],
        deadline_s=5,
        what="the crashed actor's session",
    )
    assert sessions[0]["end_reason"] == "crashed"
