"""The tool box against the real reference backend: sources merged, arguments validated before
the call, the invoke body and idempotency key, retries only for idempotent tools, the size cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from actors import ConfigError, ToolError
from actors.persistence._reference_tools import DEMO_TOOLS, BackendTool
from actors.tools import ToolBox, ToolCallSettings, ToolContext, ToolSettings, open_tools
from tests.fakes.backend import Fault, FaultyBackend, running_backend

pytestmark = pytest.mark.anyio

TOKEN = "tool-token"
CONTEXT = ToolContext("conv-1", "room-1", "alice", "operator")


async def _big(_body: dict[str, Any]) -> Any:
    return "x" * 50_000


async def _booked(body: dict[str, Any]) -> Any:
    return {"booked": body["arguments"]["slot"]}


EXTRA = (
    BackendTool("big", "Returns too much.", _big, idempotent=True),
    BackendTool(
        "book",
        "Book a slot.",
        _booked,
        {"type": "object", "properties": {"slot": {"type": "string"}}, "required": ["slot"]},
    ),
)


OPENED: list[ToolBox] = []


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[FaultyBackend]:
    async with running_backend(
        tmp_path / "b.sqlite3", token=TOKEN, tools=DEMO_TOOLS + EXTRA
    ) as served:
        yield served
        while OPENED:
            await OPENED.pop().aclose()


async def _box(backend: FaultyBackend, *declared: ToolSettings, **settings: Any) -> ToolBox:
    box = open_tools(
        ToolCallSettings(**settings),
        declared,
        (),
        backend_url=backend.url,
        backend_token=SecretStr(TOKEN),
    )
    OPENED.append(box)
    await box._refresh_backend()  # what run() does first
    return box


async def test_sources_merge_and_room_metadata_narrows_them(backend: FaultyBackend) -> None:
    declared = ToolSettings(name="book", description="Declared wins.", idempotent=True)
    box = await _box(backend, declared)
    offered = {spec.name: spec for spec in box.offered()}
    assert set(offered) == {"end_call", "order_status", "big", "book"}
    assert offered["book"].source == "config" and offered["book"].idempotent
    assert offered["order_status"].source == "backend" and offered["order_status"].idempotent
    assert offered["end_call"].source == "builtin"
    assert [spec.name for spec in box.offered(["order_status", "nope"])] == ["order_status"]
    assert box.offered([]) == ()


async def test_a_call_carries_the_contract_body_and_its_idempotency_key(
    backend: FaultyBackend,
) -> None:
    box = await _box(backend)
    spec = next(s for s in box.offered() if s.name == "order_status")
    outcome = await box.invoke(spec, '{"order_id": "42"}', CONTEXT, "call-1")
    assert outcome.ok and outcome.content == "Order 42 has shipped and arrives tomorrow."
    request = next(c for c in backend.captured if c.path == "/v1/tools/order_status:invoke")
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["idempotency-key"] == "call-1"
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert backend.tool_routes is not None
    (ran,) = backend.tool_routes.invocations
    assert ran == {
        "tool": "order_status",
        "call_id": "call-1",
        "arguments": {"order_id": "42"},
        "conversation_id": "conv-1",
        "room": "room-1",
        "caller": "alice",
        "caller_role": "operator",
    }


async def test_arguments_that_break_the_schema_are_refused_before_the_call(
    backend: FaultyBackend,
) -> None:
    box = await _box(backend)
    spec = next(s for s in box.offered() if s.name == "book")
    for bad in ('{"slot": 3}', "{}", "[1]", "not json"):
        with pytest.raises(ToolError) as caught:
            await box.invoke(spec, bad, CONTEXT, "c")
        assert caught.value.code == "invalid_arguments"
    assert backend.tool_routes is not None and backend.tool_routes.invocations == []


async def test_only_idempotent_tools_are_retried(backend: FaultyBackend) -> None:
    box = await _box(backend)
    specs = {s.name: s for s in box.offered()}
    path = "/v1/tools/order_status:invoke"
    backend.fail(Fault(503, path=path), Fault(503, path=path))
    outcome = await box.invoke(specs["order_status"], '{"order_id": "7"}', CONTEXT, "c-7")
    assert outcome.ok and outcome.attempts == 3
    backend.fail(Fault(503, path="/v1/tools/book:invoke"))
    with pytest.raises(ToolError) as caught:
        await box.invoke(specs["book"], '{"slot": "9am"}', CONTEXT, "c-9")
    assert caught.value.code == "unavailable"
    assert sum(1 for c in backend.captured if c.path == "/v1/tools/book:invoke") == 1


async def test_a_result_over_the_cap_is_an_error(backend: FaultyBackend) -> None:
    box = await _box(backend, max_result_kb=16)
    spec = next(s for s in box.offered() if s.name == "big")
    with pytest.raises(ToolError) as caught:
        await box.invoke(spec, "{}", CONTEXT, "c")
    assert caught.value.code == "too_large"


async def test_a_repeated_idempotency_key_runs_the_tool_once(backend: FaultyBackend) -> None:
    box = await _box(backend)
    spec = next(s for s in box.offered() if s.name == "book")
    first = await box.invoke(spec, '{"slot": "9am"}', CONTEXT, "same")
    again = await box.invoke(spec, '{"slot": "9am"}', CONTEXT, "same")
    assert first.content == again.content == '{"booked":"9am"}'
    assert backend.tool_routes is not None and len(backend.tool_routes.invocations) == 1


async def test_end_call_is_built_in() -> None:
    box = open_tools(ToolCallSettings(), (), (), backend_url=None, backend_token=None)
    (spec,) = box.offered()
    outcome = await box.invoke(spec, "", CONTEXT, "c")
    await box.aclose()
    assert outcome.after_reply is not None and outcome.say == "Goodbye!"
    stopped: list[str] = []

    class Room:
        def request_stop(self, reason: str) -> None:
            stopped.append(reason)

        def hand_over(self, to: str) -> bool:
            raise AssertionError(f"end_call handed over to {to}")

    outcome.after_reply(Room())
    assert stopped == ["ended by the agent"]


def test_a_declared_tool_needs_somewhere_to_run() -> None:
    tool = ToolSettings(name="lookup", description="Look it up.")
    with pytest.raises(ConfigError, match="no url and no"):
        open_tools(ToolCallSettings(), (tool,), (), backend_url=None, backend_token=None)
    with pytest.raises(ConfigError, match="built-in"):  # refused before any client is made
        open_tools(
            ToolCallSettings(),
            (ToolSettings(name="end_call", description="x", url="http://h/x"),),
            (),
            backend_url=None,
            backend_token=None,
        )


def test_a_bad_schema_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="JSON Schema"):
        ToolSettings(name="x", description="y", parameters={"type": "object", "required": 3})
