"""The agents of one room in one process: their floor, their history, who answers what.

Every room actor sits at a ``Seat`` of its room's ``Team``; a room with one agent is a team of
one, so there is one way to run an agent. The team holds:

- the **floor**: at most one agent speaks at a time. An agent takes it before its first audio
  of a reply (it may think while another speaks) and gives it back when the reply has played
  out or was cut. The user always wins: each agent hears the user itself, and speech over it
  cuts its reply (barge-in) and so frees the floor; a reply waiting for the floor is cut the
  same way. The floor is any ``Floor``; the in-memory one serves agents in one process.
- one **history**: each user turn once (every agent hears it, the first to report it records
  it and the others' reports of the same words are dropped), each agent's turns tagged with
  its name.
- **who answers**: a user turn that names agents (display name, profile name or alias, as
  whole words) is answered by the named ones that speak; any other turn by the ``always``
  agents. ``when_addressed`` agents otherwise answer only when handed over to: by a reply of
  the speaking agent ("over to you, Sam"), by the ``hand_over`` command, or by
  ``Seat.hand_over`` (the hook a ``hand_over`` tool calls). ``never`` agents never speak.

Everything here runs on the one event loop of the process; nothing blocks or awaits the
network. It logs no user text.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from actors._events import derived_event_id
from actors._pulse import Pulse
from actors.room._profiles import DEFAULT_AGENT, AgentProfile, Speaks
from actors.room._state import ConversationHistory, Message

__all__ = (
    "Floor",
    "LocalFloor",
    "Relay",
    "Seat",
    "Team",
    "TeamNews",
    "addressed",
    "handed_to",
    "solo_seat",
)

_TURN_ID_BUCKET_S = 60.0
"""A user turn's event id names its minute (two agents' clocks agree on it but at its edge)."""
_SAME_TURN_S = 10.0
"""Two agents' reports of the same words from the same speaker this close are one turn."""

_HAND_OVER = re.compile(
    r"\b(?:hand(?:ing)?\s+(?:you\s+)?over\s+to|over\s+to\s+you|passing\s+you\s+(?:over\s+)?to"
    r"|let\s+me\s+bring\s+in)\b[\s,:]*(?P<rest>.*)",
    re.IGNORECASE | re.DOTALL,
)


class Floor(Protocol):
    """Who may speak in a room now."""

    async def take(self, who: str) -> None:
        """Wait until ``who`` holds the floor (at once when it does already)."""
        ...

    def release(self, who: str) -> None:
        """Give the floor back if ``who`` holds it; never blocks."""
        ...


@dataclass(frozen=True, slots=True)
class TeamNews:
    """What a room's agents on one daemon tell those on others (through a ``Relay``): a turn
    added to the history, or a hand-over to agent ``to``."""

    kind: str  # "turn" or "hand_over"
    agent: str
    role: str = ""
    content: str = ""
    speaker: str | None = None
    interrupted: bool = False
    ts: float = 0.0
    event_id: str = ""
    to: str = ""


class Relay(Protocol):
    """Carries ``TeamNews`` to the room's agents on other daemons (a Redis stream)."""

    def publish(self, news: TeamNews) -> None:
        """Queue news for the others; never blocks."""
        ...


class LocalFloor:
    """The floor of agents in one process: whoever asks first when it is free gets it.

    Args:
        gap_s: after one agent's reply has played out, how long before another agent may
            start. The sender's playout estimate ends before the caller has heard the end: a
            track that has been playing a while sits behind a deeper jitter buffer at the
            caller than a track that starts (measured here: ~150 ms on a loaded machine).
    """

    def __init__(self, gap_s: float = 0.0) -> None:
        self.holder: str | None = None
        self._gap_s = gap_s
        self._last = ""
        self._released_at = -1e9
        self._changed = Pulse()

    async def take(self, who: str) -> None:
        agent = who.split(":", 1)[0]
        while True:
            while self.holder not in (None, who):
                await self._changed.wait()
            if self.holder == who:
                return
            wait_s = 0.0
            if self._last not in ("", agent):
                wait_s = self._released_at + self._gap_s - anyio.current_time()
            if wait_s <= 0:
                self.holder, self._last = who, agent
                return
            with anyio.move_on_after(wait_s):
                await self._changed.wait()  # taken meanwhile: wait for it again

    def release(self, who: str) -> None:
        if self.holder == who:
            self.holder = None
            self._released_at = anyio.current_time()
            self._changed.fire()


def _names(name: str, profile: AgentProfile) -> list[str]:
    return [n for n in (name, profile.name, *profile.aliases) if n]


def _mentions(text: str, names: list[str]) -> int | None:
    """Where the first of ``names`` appears in ``text`` as whole words, or None."""
    found = [
        m.start()
        for n in names
        if (m := re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text, re.IGNORECASE))
    ]
    return min(found, default=None)


def addressed(text: str, roster: Mapping[str, AgentProfile]) -> list[str]:
    """The agents of ``roster`` that ``text`` names and that speak, in roster order."""
    return [
        name
        for name, p in roster.items()
        if p.speaks is not Speaks.NEVER and _mentions(text, _names(name, p)) is not None
    ]


def handed_to(text: str, roster: Mapping[str, AgentProfile], me: str) -> str | None:
    """The agent a reply hands over to ("over to you, Sam"), or None."""
    match = _HAND_OVER.search(text)
    if match is None:
        return None
    rest = match.group("rest")
    where = {
        name: at
        for name, p in roster.items()
        if name != me
        and p.speaks is not Speaks.NEVER
        and (at := _mentions(rest, _names(name, p))) is not None
    }
    return min(where, key=lambda n: where[n], default=None)


@dataclass(slots=True)
class _Heard:
    speaker: str
    text: str
    at: float
    by: set[str] = field(default_factory=set)


class Seat:
    """One agent's place in its team: what its actor and voice pipeline ask of the team.

    Args:
        team: the room's team.
        name: the agent's profile name ("" for the default agent).
        roster: every agent the room asked for, by profile name, in the room's order.
        answer_now: the actor's way of answering the conversation as it stands (a hand-over).
    """

    def __init__(
        self,
        team: Team,
        name: str,
        roster: Mapping[str, AgentProfile],
        answer_now: Callable[[], None],
    ) -> None:
        self.team = team
        self.name = name
        self.roster = dict(roster)
        self.profile = self.roster[name]
        self._answer_now = answer_now
        self._held: str | None = None

    @property
    def speaks(self) -> bool:
        return self.profile.speaks is not Speaks.NEVER

    @property
    def lead(self) -> bool:
        """The room's first agent: it answers commands that name no agent, and stores the
        room's participant events (once a room, whichever daemon runs it)."""
        return next(iter(self.roster)) == self.name

    @property
    def greets(self) -> bool:
        """The first agent that speaks greets; the others wait to be spoken to."""
        speakers = [n for n, p in self.roster.items() if p.speaks is Speaks.ALWAYS]
        speakers = speakers or [n for n, p in self.roster.items() if p.speaks is not Speaks.NEVER]
        return bool(speakers) and speakers[0] == self.name

    def opening(self, history: ConversationHistory, greeting: bool) -> str | None:
        """What this agent says first: ``"answer"`` a resumed conversation whose last user
        turn it would answer (its answer died with the previous actor), ``"greet"`` a new
        one when it is the greeter, else None."""
        messages = history.messages
        if history.restored and messages and messages[-1].role == "user":
            last = messages[-1]
            return "answer" if self.answers(last.speaker or "", last.content) else None
        return "greet" if greeting and not history.restored and self.greets else None

    def is_agent(self, identity: str) -> bool:
        """True for a participant that is one of the room's agents (never a user to hear)."""
        return any(p.identity == identity for p in self.roster.values())

    def answers(self, speaker: str, text: str) -> bool:
        """Whether this agent answers a user turn ``text``."""
        if not self.speaks:
            return False
        named = addressed(text, self.roster)
        if named:
            return self.name in named
        return self.profile.speaks is Speaks.ALWAYS

    def heard(self, speaker: str, text: str, at: float) -> bool:
        """A user turn this agent heard; True when it is new to the team (record it)."""
        return self.team.heard(self.name, speaker, text, at)

    def turn_id(self, conversation_id: str, speaker: str, text: str, at: float) -> str:
        """The event id of a user turn about to be added to the history: the same for every
        agent that heard it, on any daemon, so the backend stores it once (it de-duplicates by
        event id). It counts how often the speaker said these words before in the history
        (agents restored from one backend and fed the same turns agree on it) and names the
        minute: a history restored short of an earlier turn with the same words and count
        cannot make a new turn look like that one."""
        words = " ".join(text.lower().split())
        before = sum(
            1
            for m in self.team.history.messages
            if m.role == "user"
            and m.speaker == speaker
            and " ".join(m.content.lower().split()) == words
        )
        minute = str(int(at // _TURN_ID_BUCKET_S))
        return derived_event_id("turn", conversation_id, speaker, words, str(before), minute)

    def recorded(self, message: Message, event_id: str | None) -> None:
        """A turn this agent added to the history: told to the agents on other daemons; a
        reply of its own that hands over passes the turn on."""
        self.team.tell(
            TeamNews(
                "turn",
                self.name,
                message.role,
                message.content,
                message.speaker,
                message.interrupted,
                message.ts,
                event_id or "",
            )
        )
        if message.role == "assistant" and not message.interrupted:
            target = handed_to(message.content, self.roster, self.name)
            if target is not None:
                self.team.hand_over(target)

    def hand_over(self, to: str) -> bool:
        """Pass the turn to agent ``to`` (``"default"`` is ``[agent]``; itself: answer now),
        for a command or a ``hand_over`` tool; False when no such agent speaks here."""
        return self.team.hand_over(DEFAULT_AGENT if to == "default" else to)

    def answer_now(self) -> None:
        self._answer_now()

    async def take_floor(self, reply: str) -> None:
        """Wait for the floor for ``reply`` (at once when it holds it). Per reply, not per
        agent: a cut reply's end may come after its agent's next reply began."""
        who = f"{self.name}:{reply}"
        await self.team.floor.take(who)
        self._held = who

    def release_floor(self, reply: str) -> None:
        who = f"{self.name}:{reply}"
        self.team.floor.release(who)
        if self._held == who:
            self._held = None

    def leave(self) -> None:
        if self._held is not None:
            self.team.floor.release(self._held)
            self._held = None
        self.team.leave(self)


class Team:
    """The agents of one room in this process (see the module docstring).

    Args:
        room: the room's name.
        floor: who may speak (the in-memory floor by default).
    """

    def __init__(self, room: str, floor: Floor | None = None) -> None:
        self.room = room
        self.floor: Floor = floor if floor is not None else LocalFloor()
        self.history = ConversationHistory()
        self.restore_claimed = False
        """Set by the first agent that loads the stored history, so only one does."""
        self._seats: dict[str, Seat] = {}
        self._recent: deque[_Heard] = deque(maxlen=64)
        self.relay: Relay | None = None
        """The agents of this room on other daemons (None: all of them are here)."""

    @property
    def empty(self) -> bool:
        return not self._seats

    def join(
        self,
        name: str,
        roster: Mapping[str, AgentProfile],
        answer_now: Callable[[], None],
    ) -> Seat:
        """Seat agent ``name`` (its profile in ``roster``); a restarted agent takes its old
        seat."""
        seat = Seat(self, name, roster, answer_now)
        self._seats[name] = seat
        return seat

    def leave(self, seat: Seat) -> None:
        if self._seats.get(seat.name) is seat:
            del self._seats[seat.name]

    def heard(self, agent: str, speaker: str, text: str, at: float) -> bool:
        words = " ".join(text.lower().split())
        for turn in self._recent:
            if (
                turn.speaker == speaker
                and turn.text == words
                and agent not in turn.by
                and abs(at - turn.at) <= _SAME_TURN_S
            ):
                turn.by.add(agent)
                return False
        self._recent.append(_Heard(speaker, words, at, {agent}))
        return True

    def hand_over(self, to: str) -> bool:
        seat = self._seats.get(to)
        if seat is None:
            if self.relay is None:
                return False
            self.relay.publish(TeamNews("hand_over", "", to=to))  # it may be on another daemon
            return True
        if not seat.speaks:
            return False
        seat.answer_now()
        return True

    def tell(self, news: TeamNews) -> None:
        if self.relay is not None:
            self.relay.publish(news)

    def news(self, news: TeamNews) -> None:
        """News from the room's agents on another daemon."""
        if news.kind == "hand_over":
            seat = self._seats.get(news.to)
            if seat is not None and seat.speaks:
                seat.answer_now()
            return
        if news.role == "user":
            if not self.heard(f"~{news.agent}", news.speaker or "", news.content, news.ts):
                return  # heard here already
        self.history.append(
            Message(news.role, news.content, news.ts, news.speaker, news.interrupted)
        )


def solo_seat() -> Seat:
    """A seat at a team of one (a voice pipeline built without a team: tests, tools)."""
    team = Team("")
    return team.join(DEFAULT_AGENT, {DEFAULT_AGENT: AgentProfile(identity="agent")}, _no_op)


def _no_op() -> None:
    pass
