"""Preemptive generation in a real room: the LLM starts on the recogniser's likely-final words
(PREFLIGHT); when the FINAL says other words that generation is thrown away, never spoken or
stored, and the answer is to what was finally heard; when it agrees, it is the answer."""

from __future__ import annotations

import pytest
from livekit import api
from prometheus_client import REGISTRY

from tests.e2e.conftest import VoiceRig, start_room, tone
from tests.harness.caller import caller
from tests.harness.livekit_server import LiveKitServer
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AGENT = "voice-agent"


def generations(outcome: str) -> float:
    """Preemptive generations so far (rooms run in this process: workers = 0)."""
    sample = REGISTRY.get_sample_value(
        "voice_supervisor_preemptive_generations_total", {"outcome": outcome}
    )
    return sample or 0.0


def asked(rig: VoiceRig) -> list[str]:
    """The last user message of every LLM call, in order."""
    return [next(m.content for m in reversed(call) if m.role == "user") for call in rig.llm.calls]


async def test_a_generation_started_on_words_the_final_changed_is_thrown_away(
    rig: VoiceRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    await start_room(lkapi, rig, "v-preempt")
    async with caller(livekit_server, "v-preempt", "ria") as ria:
        await ria.wait_for(
            lambda: "Hi, how can I help?" in ria.finals(AGENT), deadline_s=10, what="greeting"
        )
        discarded, used = generations("discarded"), generations("used")
        rig.stt.preflights.append("what time is it")  # the likely-final words ...
        rig.stt.script.append("what day is it")  # ... and what the FINAL says
        await ria.say(tone(0.8), 48_000)
        await ria.wait_for(
            lambda: "You said: what day is it." in ria.finals(AGENT),
            deadline_s=15,
            what="the answer to the final words",
        )
        # The LLM did start on the likely words, and that generation was discarded.
        assert asked(rig)[-2:] == ["what time is it", "what day is it"]
        assert generations("discarded") == discarded + 1 and generations("used") == used

        # Words the FINAL agrees with: the generation started early is the answer.
        rig.stt.preflights.append("thank you")
        rig.stt.script.append("thank you")
        await ria.say(tone(0.8), 48_000)
        await ria.wait_for(
            lambda: "You said: thank you." in ria.finals(AGENT),
            deadline_s=15,
            what="the answer started early",
        )
        assert asked(rig)[-1] == "thank you" and asked(rig).count("thank you") == 1
        assert generations("used") == used + 1
        assert "You said: what time is it." not in ria.finals(AGENT)
    turns = await poll_until(
        lambda: (m := rig.store.recent_messages("c-v-preempt", 10)) and len(m) >= 5 and m,
        deadline_s=5,
        what="turns stored",
    )
    assert [(t["role"], t["content"]) for t in turns] == [
        ("assistant", "Hi, how can I help?"),
        ("user", "what day is it"),
        ("assistant", "You said: what day is it."),
        ("user", "thank you"),
        ("assistant", "You said: thank you."),
    ]
