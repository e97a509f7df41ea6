"""Who may tell the agent what: a participant's role, set by the backend, never by itself.

The role is the participant attribute ``[data] role_attribute``, which only the party holding
the API secret can write: into the participant's token, or through the room service API. A
participant whose token lets it update its own attributes (``canUpdateOwnMetadata``) could
write any role, so it has none. A sender the agent does not know (a data packet whose
participant the SDK has not announced yet) has none either.

Built-in tools follow their command twin (``end_call``: ``end``): the model acts on the words
of whoever spoke, so the speaker's role decides, with one exception a 1:1 call needs: a caller
alone in the room may end it.
"""

from __future__ import annotations

from actors.room._settings import DataSettings
from actors.room._state import ParticipantState

__all__ = ("ANYONE", "AccessPolicy")

ANYONE = "*"


class AccessPolicy:
    """Answers "may this participant send this command?" from the ``[data]`` settings."""

    def __init__(self, settings: DataSettings) -> None:
        self.settings = settings

    def role_of(self, participant: ParticipantState | None) -> str:
        """The participant's role, ``""`` when it has none (or could have chosen its own)."""
        if participant is None or participant.left_at is not None:
            return ""
        if participant.may_set_attributes:
            return ""
        return participant.attributes.get(self.settings.role_attribute, "")

    def refusal(self, command: str, participant: ParticipantState | None) -> str | None:
        """None when ``participant`` may send ``command``; else the reason, safe to send back."""
        allowed = self.settings.roles_for(command)
        role = self.role_of(participant)
        if ANYONE in allowed or (role and role in allowed):
            return None
        needed = " or ".join(repr(r) for r in allowed) if allowed else "a role nobody has"
        if participant is None:
            # LiveKit announces a participant to the others a moment after it connects.
            return (
                f"command {command!r} needs role {needed}, and the agent does not know you "
                "yet; send it again once you have been in the room for a few seconds"
            )
        return (
            f"command {command!r} needs role {needed}; your role is {role or 'none'!r} "
            f"(participant attribute {self.settings.role_attribute!r}, set by the backend)"
        )

    def tool_refusal(
        self, tool: str, command: str, participant: ParticipantState | None, *, alone: bool
    ) -> str | None:
        """None when the turn of ``participant`` may make the agent run built-in ``tool`` (what
        ``command`` does); else why not, for the model. ``alone``: the tool allows it to a
        caller who is the only person in the room, and they are."""
        if self.refusal(command, participant) is None or (alone and participant is not None):
            return None
        allowed = self.settings.roles_for(command)
        needed = " or ".join(repr(r) for r in allowed) if allowed else "a role nobody has"
        role = self.role_of(participant)
        return (
            f"{tool} needs the caller to have role {needed} (as command {command!r}); the "
            f"caller's role is {role or 'none'!r}"
        )

    def sees_room(self, role: str) -> bool:
        """Whether ``status`` shows this role the whole room, or only the sender's own part."""
        return bool(role) and role in self.settings.operator_roles
