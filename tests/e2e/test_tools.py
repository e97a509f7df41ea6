"""Tools end to end: the real server, the real reference backend, the scripted LLM's tool rules
and zero-latency voice fakes. The agent calls the backend's demo tool and speaks its result; a
slow tool gets the filler once; a failing one an apology (the room goes on); ``end_call`` ends
the session for a caller alone in the room or an operator, never for a role-less caller others
share the room with; a tool result comes back with the history after the actor restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from livekit import api

from actors.persistence._reference_tools import DEMO_TOOLS, BackendTool
from actors.providers import Rule, ScriptedLlm
from actors.room import Providers
from actors.tools import McpServerSettings
from supervisor import Daemon
from tests.conftest import daemon_config, room_metadata
from tests.e2e.conftest import tone
from tests.e2e.test_data_messages import OPERATOR
from tests.fakes.backend import FaultyBackend, running_backend
from tests.fakes.instant import InstantStt, ToneTts
from tests.fakes.mcp_server import serving_http
from tests.fakes.recording_llm import RecordingLlm
from tests.harness.caller import Caller, caller
from tests.harness.livekit_server import LiveKitServer
from tests.harness.participants import joined
from tests.harness.waits import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AGENT = "voice-agent"
APOLOGY = "Sorry, I couldn't do that just now."
REFUSAL = "Sorry, I'm not allowed to do that for you."
RULES = (
    Rule(
        match=r"order (?P<order_id>\w+)", tool="order_status", arguments={"order_id": "{order_id}"}
    ),
    Rule(keywords=("slow",), tool="slow_lookup", reply="Found it: {result}"),
    Rule(keywords=("broken",), tool="broken"),
    Rule(keywords=("bye",), tool="end_call"),
    Rule(keywords=("weather",), tool="weather", arguments={"city": "Paris"}),
)


@dataclass
class ToolRig:
    daemon: Daemon
    backend: FaultyBackend
    llm: RecordingLlm
    tts: ToneTts
    release: anyio.Event


@pytest.fixture
async def rig(
    livekit_server: LiveKitServer, webhook_port: int, tmp_path: Path
) -> AsyncIterator[ToolRig]:
    release = anyio.Event()

    async def slow(_body: dict[str, Any]) -> Any:
        await release.wait()  # the test lets it answer once it heard the filler
        return "the slow answer."

    async def broken(_body: dict[str, Any]) -> Any:
        raise web.HTTPInternalServerError()

    tools = (
        *DEMO_TOOLS,
        BackendTool("slow_lookup", "Takes its time.", slow, timeout_s=30),
        BackendTool("broken", "Always fails.", broken),
    )
    async with (
        running_backend(tmp_path / "backend.sqlite3", tools=tools) as backend,
        serving_http() as mcp_url,
    ):
        llm = RecordingLlm.scripted(ScriptedLlm(rules=RULES))
        config = daemon_config(
            livekit_server,
            webhook_port,
            tmp_path / "data",
            voice={"enabled": True},
            persistence={"backend_url": backend.url},
            tool_calls={"filler_after_ms": 200},
        )
        mcp = McpServerSettings(name="weather", url=mcp_url)
        config = config.model_copy(update={"mcp_servers": (mcp,)})
        tts = ToneTts(ms_per_word=30)
        providers = Providers(InstantStt(), llm, tts, greeting="Hi.")
        daemon = Daemon(config, providers=providers)
        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            yield ToolRig(daemon, backend, llm, tts, release)
            release.set()
            daemon.request_stop()


async def _room(lkapi: api.LiveKitAPI, rig: ToolRig, name: str) -> None:
    metadata = room_metadata(conversation_id=f"c-{name}", user_id="u")
    await lkapi.room.create_room(api.CreateRoomRequest(name=name, metadata=metadata))
    registry = rig.daemon.registry
    assert registry is not None
    await poll_until(lambda: name in registry.joined, deadline_s=10, what="agent joined")


@asynccontextmanager
async def _greeted(
    rig: ToolRig,
    lkapi: api.LiveKitAPI,
    server: LiveKitServer,
    room: str,
    who: str,
    *,
    deadline_s: float = 10,
) -> AsyncIterator[Caller]:
    """``room`` with the agent in it, and ``who`` calling, greeted."""
    await _room(lkapi, rig, room)
    async with caller(server, room, who) as bot:
        await bot.wait_for(lambda: "Hi." in bot.finals(AGENT), deadline_s=deadline_s, what="hi")
        yield bot


async def _ask(bot: Caller, text: str, answer: str, *, what: str, deadline_s: float = 10) -> None:
    """``bot`` types ``text`` (a user turn) and hears a reply that contains ``answer``."""
    await bot.room.local_participant.send_text(text, topic="lk.chat")
    await bot.wait_for(
        lambda: any(answer in f for f in bot.finals(AGENT)), deadline_s=deadline_s, what=what
    )


def _shipped(order: str) -> str:
    return f"Order {order} has shipped and arrives tomorrow."


async def _seen(rig: ToolRig, room: str, identity: str) -> None:
    """Until the agent has seen ``identity`` join (its role is known from then on)."""
    await poll_until(
        lambda: any(
            e["room"] == room and e["data"]["identity"] == identity
            for e in rig.backend.store.events(["participant_connected"])
        ),
        deadline_s=10,
        what=f"the agent saw {identity} join",
    )


def _session(rig: ToolRig, room: str) -> list[dict[str, Any]]:
    return [s for s in rig.backend.store.sessions() if s["room"] == room]


def _stored(rig: ToolRig, room: str) -> list[dict[str, Any]]:
    return rig.backend.store.recent_messages(f"c-{room}", 50)


async def test_the_agent_calls_the_backends_demo_tool_and_speaks_its_result(
    rig: ToolRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    async with _greeted(rig, lkapi, livekit_server, "t-demo", "alice") as alice:
        await _ask(alice, "where is order 42", _shipped("42"), what="the tool's result")
        assert _shipped("42") in alice.finals(AGENT)
    rows = await poll_until(
        lambda: (m := _stored(rig, "t-demo")) and m[-1]["role"] == "assistant" and len(m) > 2 and m,
        deadline_s=5,
        what="the call stored",
    )
    call = next(r for r in rows if r["role"] == "tool_call")
    result = next(r for r in rows if r["role"] == "tool")
    assert call["name"] == result["name"] == "order_status"
    assert call["tool_call_id"] == result["tool_call_id"]
    assert result["content"] == _shipped("42")
    assert [r["role"] for r in rows][-2:] == ["tool", "assistant"]
    assert rig.backend.tool_routes is not None
    (ran,) = rig.backend.tool_routes.invocations
    assert ran["arguments"] == {"order_id": "42"} and ran["caller"] == "alice"
    assert ran["caller_role"] is None  # a plain token: no role
    assert ran["room"] == "t-demo" and ran["conversation_id"] == "c-t-demo"
    (event,) = rig.backend.store.events(["tool_result"])
    assert event["data"]["duration_ms"] >= 0 and event["data"]["attempts"] == 1


async def test_a_slow_tool_gets_the_filler_once_then_its_result(
    rig: ToolRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    async with _greeted(rig, lkapi, livekit_server, "t-slow", "bob") as bob:
        await bob.room.local_participant.send_text("a slow question", topic="lk.chat")
        # Captions arrive whole, at the reply's end: the filler is seen going to the voice.
        await poll_until(lambda: "One moment." in rig.tts.texts, deadline_s=10, what="filler")
        rig.release.set()
        await bob.wait_for(
            lambda: any("the slow answer." in f for f in bob.finals(AGENT)),
            deadline_s=10,
            what="the slow tool's result",
        )
    (final,) = [f for f in bob.finals(AGENT) if "slow answer" in f]
    assert final == "One moment. Found it: the slow answer."
    assert rig.tts.texts.count("One moment.") == 1


async def test_a_failing_tool_gets_an_apology_and_the_room_goes_on(
    rig: ToolRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    async with _greeted(rig, lkapi, livekit_server, "t-broken", "carol") as carol:
        await _ask(carol, "the broken one", APOLOGY, what="the apology")
        assert APOLOGY in carol.finals(AGENT)
        await _ask(carol, "and order 7?", _shipped("7"), what="the next answer")
    errors = await poll_until(
        lambda: rig.backend.store.events(["tool_error"]), deadline_s=5, what="tool_error"
    )
    assert errors[0]["data"]["name"] == "broken" and errors[0]["data"]["code"] == "unavailable"
    assert sum(1 for c in rig.backend.captured if c.path == "/v1/tools/broken:invoke") == 1


async def test_end_call_ends_the_call_of_a_caller_alone_in_the_room(
    rig: ToolRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    async with _greeted(rig, lkapi, livekit_server, "t-bye", "dave") as dave:  # no role
        await _ask(dave, "bye for now", "Goodbye!", what="bye")
        sessions = await poll_until(
            lambda: _session(rig, "t-bye"), deadline_s=10, what="the session saved"
        )
    assert sessions[0]["end_reason"] == "ended by the agent"
    assert [m["content"] for m in sessions[0]["messages"]][-1] == "Goodbye!"


async def test_only_an_operator_ends_a_call_others_share(
    rig: ToolRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    stt = rig.daemon.providers.stt if rig.daemon.providers is not None else None
    assert isinstance(stt, InstantStt)
    room = "t-shared"
    async with (
        _greeted(rig, lkapi, livekit_server, room, "gus") as gus,
        joined(livekit_server, room, "hal"),  # a second person, also without a role
    ):
        await _seen(rig, room, "hal")
        stt.script.append("bye for now")
        await gus.say(tone(1.0), 48_000)  # by voice: "bye for now", from a role-less caller
        await gus.wait_for(
            lambda: any(REFUSAL in f for f in gus.finals(AGENT)), deadline_s=10, what="refusal"
        )
        assert not any("Goodbye!" in f for f in gus.finals(AGENT))
        (refused,) = await poll_until(
            lambda: rig.backend.store.events(["tool_error"]), deadline_s=5, what="tool_error"
        )
        assert refused["data"]["name"] == "end_call" and refused["data"]["code"] == "forbidden"
        async with joined(livekit_server, room, "olga", attributes=OPERATOR) as olga:
            await _seen(rig, room, "olga")
            await olga.local_participant.send_text("where is order 5", topic="lk.chat")
            await gus.wait_for(
                lambda: _shipped("5") in gus.finals(AGENT), deadline_s=10, what="the result"
            )
            assert rig.backend.tool_routes is not None
            (ran,) = rig.backend.tool_routes.invocations
            assert (ran["caller"], ran["caller_role"]) == ("olga", "operator")
            await olga.local_participant.send_text("bye everyone", topic="lk.chat")
            await gus.wait_for(
                lambda: "Goodbye!" in gus.finals(AGENT), deadline_s=10, what="the goodbye"
            )
            sessions = await poll_until(
                lambda: _session(rig, room), deadline_s=10, what="the session saved"
            )
    assert sessions[0]["end_reason"] == "ended by the agent"
    messages = sessions[0]["messages"]
    assert [m["speaker"] for m in messages if m["role"] == "user"] == ["gus", "olga", "olga"]
    assert [m["content"] for m in messages][-1] == "Goodbye!"


async def test_a_tool_result_is_restored_after_the_actor_restarts(
    rig: ToolRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    async with _greeted(rig, lkapi, livekit_server, "t-restore", "erin") as erin:
        await _ask(erin, "where is order 9", _shipped("9"), what="the tool's result")
        await poll_until(
            lambda: any(r["role"] == "assistant" for r in _stored(rig, "t-restore")[-1:]),
            deadline_s=5,
            what="the answer stored",
        )
        rig.llm.crash_next = True  # the actor dies answering the next turn, and restarts
        await _ask(
            erin,
            "and now?",
            "You said: and now?",
            what="the restarted actor's answer",
            deadline_s=20,
        )
    restored = rig.llm.seen[-1]
    call = next(m for m in restored if m.role == "tool_call")
    result = next(m for m in restored if m.role == "tool")
    assert call.name == result.name == "order_status"
    assert call.tool_call_id == result.tool_call_id
    assert result.content == _shipped("9")


async def test_a_barge_in_lets_a_booking_finish_and_records_its_result(
    rig: ToolRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    stt = rig.daemon.providers.stt if rig.daemon.providers is not None else None
    assert isinstance(stt, InstantStt)
    async with _greeted(rig, lkapi, livekit_server, "t-barge", "fred") as fred:
        await fred.room.local_participant.send_text("a slow booking", topic="lk.chat")
        await poll_until(lambda: "One moment." in rig.tts.texts, deadline_s=10, what="filler")
        stt.script.append("never mind")
        await fred.say(tone(1.0), 48_000)  # talks over the agent while the tool runs
        # Under load the recogniser may cut the speech in two; either way the reply waiting
        # for the booking was cut, or nothing could be answered before the booking returns.
        await fred.wait_for(
            lambda: any(f.startswith("You said:") for f in fred.finals(AGENT)),
            deadline_s=10,
            what="an answer to what was said over the agent",
        )
        rig.release.set()  # the booking (not idempotent) was left to finish
        results = await poll_until(
            lambda: rig.backend.store.events(["tool_result"]), deadline_s=10, what="its result"
        )
    assert results[0]["data"]["name"] == "slow_lookup"
    assert results[0]["data"]["content"] == "the slow answer."
    assert not rig.backend.store.events(["tool_error"])


async def test_an_mcp_servers_tool_is_called_like_the_others(
    rig: ToolRig, lkapi: api.LiveKitAPI, livekit_server: LiveKitServer
) -> None:
    async with _greeted(rig, lkapi, livekit_server, "t-mcp", "hana") as hana:
        answer = "It is sunny in Paris."
        await _ask(hana, "how is the weather", answer, what="the MCP tool's result")
        assert answer in hana.finals(AGENT)
    calls = await poll_until(
        lambda: rig.backend.store.events(["tool_call"]), deadline_s=5, what="the call stored"
    )
    assert calls[0]["data"]["name"] == "weather" and calls[0]["data"]["source"] == "mcp:weather"


async def test_a_room_in_a_worker_process_calls_the_backends_tool(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI, webhook_port: int, tmp_path: Path
) -> None:
    async with running_backend(tmp_path / "backend.sqlite3") as backend:
        config = daemon_config(
            livekit_server,
            webhook_port,
            tmp_path / "data",
            supervisor={"workers": 1, "worker_heartbeat_s": 0.5},
            voice={"enabled": True, "providers_factory": "tests.fakes.tool_providers:providers"},
            persistence={"backend_url": backend.url},
            llm={"greeting": "Hi.", "rules": [RULES[0].model_dump()]},
        )
        daemon = Daemon(config)
        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            llm = RecordingLlm.scripted(ScriptedLlm())  # unused: the worker has its own
            rig = ToolRig(daemon, backend, llm, ToneTts(), anyio.Event())
            greeted = _greeted(rig, lkapi, livekit_server, "t-worker", "ivy", deadline_s=15)
            async with greeted as ivy:
                what = "the tool's result, from a worker"
                await _ask(ivy, "where is order 77", _shipped("77"), what=what, deadline_s=15)
                assert _shipped("77") in ivy.finals(AGENT)
            daemon.request_stop()
    assert backend.tool_routes is not None
    assert [i["arguments"] for i in backend.tool_routes.invocations] == [{"order_id": "77"}]
