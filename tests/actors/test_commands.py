"""Command parsing: strict, clear errors, and no input that raises anything else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.room._commands import CommandError, Say, parse_command


def test_a_valid_command_parses() -> None:
    cmd = parse_command(b'{"id": "1", "command": "say", "text": "hi"}', max_bytes=1000)
    assert cmd == Say(id="1", command="say", text="hi")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"[1]", "command must be a JSON object"),
        (
            b'{"command": "say", "text": ""}',
            "invalid say command: text: String should have at least",
        ),
        (b'{"command": "ping", "extra": 1}', "invalid ping command: extra: Extra inputs"),
        (b'{"command": 3}', "unknown command 3"),
        (b"x" * 2000, "command too large (2000 bytes; at most 1000)"),
    ],
)
def test_bad_commands_say_what_is_wrong(payload: bytes, message: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(payload, max_bytes=1000)
    assert message in str(info.value)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["id", "command", "text", "x"])
    return st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            _containers,
            max_leaves=10,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_fuzzed_commands_either_parse_or_raise_command_error(payload: bytes) -> None:
    try:
        parse_command(payload, max_bytes=256)
    except CommandError as exc:
        assert str(exc)
