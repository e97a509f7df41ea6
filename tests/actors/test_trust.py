"""Roles, quotas and the SDK wiring of data messages, without a server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, get_args

import anyio
import pytest

from actors import ConfigError
from actors.room import DEFAULT_COMMAND_ROLES, DataSettings, ParticipantState
from actors.room._access import AccessPolicy
from actors.room._commands import COMMAND_NAMES, Command
from actors.room._messages import CommandReceived, DataRefused, RoomMessage, StreamOpened
from actors.room._quota import Admission, TokenBucket
from actors.room._wiring import wire_room
from supervisor import parse_config
from tests.fakes.clock import JumpClock
from tests.fakes.room import FakeReader, FakeRoom


def person(identity: str, role: str | None = None, *, may_set: bool = False) -> ParticipantState:
    attributes = {} if role is None else {"agent.role": role}
    return ParticipantState(identity, identity, 0.0, "", attributes, may_set_attributes=may_set)


def test_every_command_has_default_roles() -> None:
    union = get_args(get_args(Command)[0])
    names = {get_args(model.model_fields["command"].annotation)[0] for model in union}
    assert names == set(DEFAULT_COMMAND_ROLES) == set(COMMAND_NAMES)


@pytest.mark.parametrize("command", sorted(DEFAULT_COMMAND_ROLES))
def test_default_roles(command: str) -> None:
    policy = AccessPolicy(DataSettings())
    anyone = command in ("ping", "interrupt")
    assert (policy.refusal(command, person("op", "operator")) is None) is True
    assert (policy.refusal(command, person("guest")) is None) is anyone
    assert (policy.refusal(command, person("x", "operator", may_set=True)) is None) is anyone
    assert (policy.refusal(command, None) is None) is anyone


def test_a_refusal_names_the_command_the_role_needed_and_the_role_held() -> None:
    policy = AccessPolicy(DataSettings(command_roles={"say": ("operator", "host")}))
    assert policy.refusal("say", person("g", "guest")) == (
        "command 'say' needs role 'operator' or 'host'; your role is 'guest' "
        "(participant attribute 'agent.role', set by the backend)"
    )
    assert policy.refusal("say", person("h", "host")) is None
    unknown = policy.refusal("end", None)
    assert unknown is not None and "does not know you yet" in unknown
    assert AccessPolicy(DataSettings(command_roles={"ping": ()})).refusal(
        "ping", person("op", "operator")
    ) == (
        "command 'ping' needs role a role nobody has; your role is 'operator' "
        "(participant attribute 'agent.role', set by the backend)"
    )


def test_a_participant_who_left_has_no_role() -> None:
    gone = person("op", "operator")
    gone.left_at = 5.0
    assert AccessPolicy(DataSettings()).role_of(gone) == ""


def test_command_roles_merge_over_the_defaults_and_refuse_unknown_commands() -> None:
    config = parse_config({"data": {"command_roles": {"say": ["host"]}}}, environ={})
    assert config.data.roles_for("say") == ("host",)
    assert config.data.roles_for("end") == ("operator",)
    assert config.data.role_attribute == "agent.role"
    with pytest.raises(ConfigError, match=r"\[data\] command_roles = .*unknown command\(s\) dance"):
        parse_config({"data": {"command_roles": {"dance": ["*"]}}}, environ={})


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = JumpClock()
    bucket = TokenBucket(per_minute=60, capacity=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.t += 1.0
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.t += 600
    assert sum(bucket.take() for _ in range(10)) == 3


def test_admission_notifies_once_per_refused_burst() -> None:
    clock = JumpClock()
    admission = Admission(DataSettings(burst=2, commands_per_minute=60), clock)
    assert admission.message("a", "agent.command") is None
    assert admission.message("a", "agent.command") is None
    first = admission.message("a", "agent.command")
    second = admission.message("a", "agent.command")
    assert first is not None and first.notify and "commands_per_minute" in first.reason
    assert second is not None and not second.notify
    assert admission.message("b", "agent.command") is None  # quotas are per participant
    clock.t += 1.0
    assert admission.message("a", "agent.command") is None
    again = admission.message("a", "agent.command")
    assert again is not None and again.notify


def test_open_streams_are_capped_per_participant_and_per_room() -> None:
    admission = Admission(DataSettings(max_open_streams=2, room_max_open_streams=3), JumpClock())
    assert admission.open_stream("a", "agent.file") is None
    assert admission.open_stream("a", "agent.file") is None
    per_person = admission.open_stream("a", "agent.file")
    assert per_person is not None and "max_open_streams" in per_person.reason
    assert admission.open_stream("b", "agent.file") is None
    per_room = admission.open_stream("c", "agent.file")
    assert per_room is not None and "room_max_open_streams" in per_room.reason
    admission.stream_closed("a")
    assert admission.open_stream("c", "agent.file") is None
    assert admission.open_streams == 3


def test_the_room_file_budget_counts_files_and_bytes() -> None:
    admission = Admission(DataSettings(room_max_files=2, room_file_mb=1.0), JumpClock())
    assert admission.file_started() is None
    assert admission.file_bytes(700_000) is None
    too_much = admission.file_bytes(400_000)
    assert too_much is not None and "room_file_mb" in too_much
    admission.file_released(700_000)
    assert admission.file_started() is None
    assert admission.file_bytes(1_000_000) is None
    over = admission.file_started()
    assert over is not None and "room_max_files" in over


# -- the SDK wiring: what a refused or unqueued stream does to its reader ----------------------


@dataclass
class FakePacket:
    data: bytes
    topic: str = "agent.command"
    participant: Any = None


@contextmanager
def wired(settings: DataSettings, inbox_size: int) -> Iterator[tuple[FakeRoom, Any, Admission]]:
    room = FakeRoom()
    send, receive = anyio.create_memory_object_stream[RoomMessage](inbox_size)
    admission = Admission(settings, JumpClock())
    wire_room(room.as_rtc_room(), send, admission, JumpClock(), anyio.Event())
    with send, receive:
        yield room, receive, admission


def test_a_stream_that_cannot_be_queued_is_closed_and_gives_back_its_slot() -> None:
    with wired(DataSettings(), inbox_size=1) as (room, inbox, admission):
        first, second = FakeReader("", "s1"), FakeReader("", "s2")
        room.streams["agent.file"](first, "alice")
        room.streams["agent.file"](second, "alice")  # the mailbox is full
        assert not first.closed and second.closed
        assert admission.open_streams == 1
        assert isinstance(inbox.receive_nowait(), StreamOpened)


def test_a_refused_stream_is_closed_unread_and_answered_once() -> None:
    with wired(DataSettings(max_open_streams=1), inbox_size=16) as (room, inbox, admission):
        readers = [FakeReader("", f"s{i}") for i in range(4)]
        for reader in readers:
            room.streams["agent.command"](reader, "alice")
        assert [r.closed for r in readers] == [False, True, True, True]
        queued = [inbox.receive_nowait() for _ in range(2)]
        assert isinstance(queued[0], StreamOpened)
        assert isinstance(queued[1], DataRefused) and queued[1].item_id == "s1"
        with pytest.raises(anyio.WouldBlock):
            inbox.receive_nowait()
        assert admission.open_streams == 1


def test_packets_over_quota_never_reach_the_mailbox() -> None:
    with wired(DataSettings(burst=3), inbox_size=1000) as (room, inbox, _):
        for _ in range(100):
            room.handlers["data_received"](FakePacket(b'{"command": "ping"}'))
        messages: list[RoomMessage] = []
        while True:
            try:
                messages.append(inbox.receive_nowait())
            except anyio.WouldBlock:
                break
        assert [type(m) for m in messages] == [CommandReceived] * 3 + [DataRefused]
