"""Who is in the room, as its actor knows it: one state per participant identity.

Owned by the room actor (only its task calls these). Each arrival and departure becomes the
event payload the actor emits; a repeat (the SDK announcing someone again, a departure already
seen) becomes nothing.
"""

from __future__ import annotations

from livekit import rtc

from actors._events import derived_event_id
from actors._payloads import ParticipantConnected, ParticipantDisconnected
from actors.room._messages import MetadataChanged, ParticipantJoined
from actors.room._state import ParticipantState

__all__ = ("People",)

_NOT_PEOPLE = frozenset(
    {rtc.ParticipantKind.PARTICIPANT_KIND_AGENT, rtc.ParticipantKind.PARTICIPANT_KIND_EGRESS}
)


class People:
    def __init__(self) -> None:
        self.states: dict[str, ParticipantState] = {}

    def get(self, identity: str) -> ParticipantState | None:
        return self.states.get(identity)

    def present(self) -> list[str]:
        """Identities in the room now, sorted."""
        return sorted(i for i, p in self.states.items() if p.left_at is None)

    def callers(self) -> list[str]:
        """Identities of the people in the room now: agents (ours and any other) and recorders
        (egress) left out, sorted."""
        return sorted(
            i for i, p in self.states.items() if p.left_at is None and p.kind not in _NOT_PEOPLE
        )

    def joined(self, m: ParticipantJoined, user_id: str | None) -> ParticipantConnected | None:
        """``m``'s participant arrived; None when it was known to be here already."""
        known = self.states.get(m.identity)
        if known is not None and known.left_at is None:
            return None
        self.states[m.identity] = ParticipantState(
            m.identity,
            m.name,
            m.at,
            m.metadata,
            m.attributes,
            may_set_attributes=m.may_set_attributes,
            kind=m.kind,
            sid=m.sid,
        )
        return ParticipantConnected(
            identity=m.identity,
            name=m.name,
            metadata=m.metadata,
            attributes=m.attributes,
            kind=m.kind,
            user_id=user_id,
        )

    def left(
        self, identity: str, reason: str, at: float, user_id: str | None
    ) -> ParticipantDisconnected | None:
        """``identity`` left at ``at``; None when it was not here."""
        state = self.states.get(identity)
        if state is None or state.left_at is not None:
            return None
        state.left_at = at
        return ParticipantDisconnected(
            identity=identity,
            name=state.name,
            reason=reason,
            duration_s=round(at - state.joined_at, 3),
            user_id=user_id,
        )

    def event_id(self, identity: str, kind: str, *facts: str) -> str | None:
        """The id of an arrival or departure: one per connection (LiveKit gives each its own
        sid) and fact, so an actor that restarts and finds the caller still there, or a lead on
        another daemon, announces them again under the same id and the backend keeps one. The
        departure's reason is a fact: an ``agent_left`` (a session ended with them there) may be
        followed by their real departure under a later actor. None (a fresh id) without a sid."""
        state = self.states.get(identity)
        if state is None or not state.sid:
            return None
        return derived_event_id(f"participant_{kind}", state.sid, *facts)

    def changed(self, m: MetadataChanged) -> None:
        """A participant's metadata, name, attributes or permissions changed."""
        state = self.states.get(m.identity)
        if state is None:
            return
        if m.metadata is not None:
            state.metadata = m.metadata
        if m.name is not None:
            state.name = m.name
        if m.attributes is not None:
            state.attributes = m.attributes
        if m.may_set_attributes is not None:
            state.may_set_attributes = m.may_set_attributes
