"""The team of a room's agents: who answers, hand-over rules, one user turn, the floor."""

from __future__ import annotations

import functools

import anyio

from actors.room import AgentProfile, ConversationHistory, LocalFloor, Message, Speaks, Team
from actors.room._team import TeamNews, addressed, handed_to

ROSTER = {
    "concierge": AgentProfile(identity="a-concierge", name="Ava"),
    "specialist": AgentProfile(
        identity="a-specialist",
        name="Sam",
        aliases=("the specialist",),
        speaks=Speaks.WHEN_ADDRESSED,
    ),
    "notes": AgentProfile(identity="a-notes", name="Notes", speaks=Speaks.NEVER),
}


def test_a_turn_that_names_an_agent_goes_to_it_and_any_other_to_the_always_agents() -> None:
    team = Team("r")
    s = {name: team.join(name, ROSTER, lambda: None) for name in ROSTER}
    assert addressed("Sam, what is the rate?", ROSTER) == ["specialist"]
    assert addressed("ask THE SPECIALIST please", ROSTER) == ["specialist"]
    assert addressed("Samuel called", ROSTER) == []  # whole words only
    assert [n for n, seat in s.items() if seat.answers("u", "Sam, the rate?")] == ["specialist"]
    assert [n for n, seat in s.items() if seat.answers("u", "hello there")] == ["concierge"]
    # Naming the listener does not make it speak: the always agent answers.
    assert [n for n, seat in s.items() if seat.answers("u", "Notes, write that")] == ["concierge"]
    assert s["concierge"].greets and not s["specialist"].greets and not s["notes"].greets
    assert s["concierge"].lead and not s["notes"].lead


def test_a_reply_that_hands_over_makes_the_named_agent_answer() -> None:
    answered: list[str] = []
    team = Team("r")
    s = {name: team.join(name, ROSTER, functools.partial(answered.append, name)) for name in ROSTER}
    assert handed_to("Let me hand you over to Sam.", ROSTER, "concierge") == "specialist"
    assert handed_to("Over to you, the specialist!", ROSTER, "concierge") == "specialist"
    assert handed_to("Sam is great.", ROSTER, "concierge") is None
    assert handed_to("Over to you, Notes.", ROSTER, "concierge") is None  # a listener
    s["concierge"].recorded(Message("assistant", "Good question. Over to you, Sam.", 1.0), None)
    assert answered == ["specialist"]
    assert s["specialist"].hand_over("concierge") and answered == ["specialist", "concierge"]
    assert not s["specialist"].hand_over("notes")  # a listener does not speak
    s["concierge"].leave()
    assert not s["specialist"].hand_over("concierge")  # gone from this process


def test_each_user_turn_is_recorded_once_however_many_agents_heard_it() -> None:
    team = Team("r")
    a = team.join("concierge", ROSTER, lambda: None)
    b = team.join("notes", ROSTER, lambda: None)
    assert a.heard("alice", "Hello there", 100.0)
    assert not b.heard("alice", "hello  there", 100.4)  # the same turn, heard by the other
    assert b.heard("alice", "hello there", 103.0)  # said again: the other agent heard it first
    assert not a.heard("alice", "hello there", 103.1)
    assert a.heard("bob", "hello there", 103.2)  # another speaker's turn
    assert a.heard("alice", "hello there", 200.0)  # long after: a new turn


def test_opening_answers_a_resumed_turn_only_when_this_agent_would() -> None:
    team = Team("r")
    s = {name: team.join(name, ROSTER, lambda: None) for name in ROSTER}
    history = ConversationHistory()
    history.restore([{"role": "user", "content": "Sam, are you there?", "speaker": "alice"}])
    assert [n for n, seat in s.items() if seat.opening(history, True) == "answer"] == ["specialist"]
    assert [n for n, seat in s.items() if seat.opening(ConversationHistory(), True)] == [
        "concierge"
    ]
    history.append(Message("assistant", "Yes.", 1.0, "specialist"))
    assert all(seat.opening(history, True) is None for seat in s.values())


async def test_one_agent_holds_the_floor_at_a_time_and_a_release_passes_it_on() -> None:
    team = Team("r")
    floor = team.floor
    assert isinstance(floor, LocalFloor)
    a = team.join("concierge", ROSTER, lambda: None)
    b = team.join("specialist", ROSTER, lambda: None)
    order: list[str] = []
    await a.take_floor("RE_1")
    await a.take_floor("RE_1")  # held already: at once

    async def second() -> None:
        await b.take_floor("RE_2")
        order.append("b speaks")

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        assert order == [] and floor.holder == "concierge:RE_1"
        a.release_floor("RE_9")  # not the reply that holds it: nothing changes
        await anyio.wait_all_tasks_blocked()
        assert order == []
        a.release_floor("RE_1")
    assert order == ["b speaks"] and floor.holder == "specialist:RE_2"
    b.leave()  # leaving gives back what it held
    assert floor.holder is None


async def test_a_cut_replys_late_release_does_not_free_its_agents_next_reply() -> None:
    team = Team("r")
    a = team.join("concierge", ROSTER, lambda: None)
    await a.take_floor("RE_1")
    taken = anyio.Event()

    async def next_reply() -> None:
        await a.take_floor("RE_2")
        taken.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(next_reply)
        await anyio.wait_all_tasks_blocked()
        assert not taken.is_set()  # the next reply waits for the cut one's end
        a.release_floor("RE_1")
    assert isinstance(team.floor, LocalFloor) and team.floor.holder == "concierge:RE_2"


async def test_after_one_agent_another_waits_the_gap_but_the_same_agent_does_not() -> None:
    floor = LocalFloor(gap_s=0.05)
    team = Team("r", floor)
    a = team.join("concierge", ROSTER, lambda: None)
    b = team.join("specialist", ROSTER, lambda: None)
    await a.take_floor("RE_1")
    a.release_floor("RE_1")
    await a.take_floor("RE_2")  # the same agent again: no gap
    a.release_floor("RE_2")
    released = anyio.current_time()
    await b.take_floor("RE_3")
    assert anyio.current_time() - released >= 0.05 and floor.holder == "specialist:RE_3"


def test_a_user_turn_gets_the_same_event_id_from_every_agent_on_every_daemon() -> None:
    here, there = Team("r"), Team("r")  # two daemons: two teams, one backend history
    a = here.join("concierge", ROSTER, lambda: None)
    b = there.join("specialist", ROSTER, lambda: None)
    first = a.turn_id("c-1", "alice", "Yes please", 600.1)
    assert first == b.turn_id("c-1", "alice", "yes  please", 600.4) and first.startswith("EV_")
    for team in (here, there):
        team.history.append(Message("user", "yes please", 1.0, "alice"))
    again = a.turn_id("c-1", "alice", "yes please", 610.0)  # said a second time: a new turn
    assert again != first and again == b.turn_id("c-1", "alice", "yes please", 610.2)
    assert a.turn_id("c-1", "bob", "yes please", 610.0) != again
    # Restored short of the first turn, the same words later are still a new turn.
    assert Team("r").join("concierge", ROSTER, lambda: None).turn_id(
        "c-1", "alice", "yes please", 900.0
    ) not in (first, again)


class Relayed:
    def __init__(self) -> None:
        self.news: list[TeamNews] = []

    def publish(self, news: TeamNews) -> None:
        self.news.append(news)


def test_news_between_daemons_keeps_one_history_and_passes_hand_overs_on() -> None:
    here, there = Team("r"), Team("r")
    here.relay, there.relay = Relayed(), Relayed()
    answered: list[str] = []
    ava = here.join("concierge", ROSTER, lambda: answered.append("concierge"))
    there.join("specialist", ROSTER, lambda: answered.append("specialist"))
    # Ava hears the user and answers with a hand-over; the news goes to the other daemon.
    assert ava.heard("alice", "a mortgage question", 10.0)
    user = Message("user", "a mortgage question", 10.0, "alice")
    here.history.append(user)
    ava.recorded(user, "EV_1")
    reply = Message("assistant", "Over to you, Sam.", 11.0, "concierge")
    here.history.append(reply)
    ava.recorded(reply, "EV_2")
    assert isinstance(here.relay, Relayed)
    assert [n.kind for n in here.relay.news] == ["turn", "turn", "hand_over"]
    # The specialist's daemon heard the user itself first: the user's turn is not repeated.
    assert there.heard("specialist", "alice", "a mortgage question", 10.1)
    there.history.append(Message("user", "a mortgage question", 10.1, "alice"))
    for news in here.relay.news:
        there.news(news)
    assert [(m.role, m.speaker) for m in there.history.messages] == [
        ("user", "alice"),
        ("assistant", "concierge"),
    ]
    assert answered == ["specialist"]
