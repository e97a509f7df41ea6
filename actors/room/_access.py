"""Who may tell the agent what: a participant's role, set by the backend, never by itself.

The role is the participant attribute ``[data] role_attribute``, which only the party holding
the API secret can write: into the participant's token, or through the room service API. A
participant whose token lets it update its own attributes (``canUpdateOwnMetadata``) could
write any role, so it has none. A sender the agent does not know (a data packet whose
participant the SDK has not announced yet) has none either.
"""

from __future__ import annotations

from actors.room._settings import DataSettings
from actors.room._state import ParticipantState

__all__ = ("ANYONE", "AccessPolicy")

ANYONE = "*"


class AccessPolicy:
    """Answers "may this participant send this command?" from the ``[data]`` settings."""

    def __init__(self, settings: DataSettings) -> None:
        self._settings = settings

    def role_of(self, participant: ParticipantState | None) -> str:
        """The participant's role, ``""`` when it has none (or could have chosen its own)."""
        if participant is None or participant.left_at is not None:
            return ""
        if participant.may_set_attributes:
            return ""
        return participant.attributes.get(self._settings.role_attribute, "")

    def refusal(self, command: str, participant: ParticipantState | None) -> str | None:
        """None when ``participant`` may send ``command``; else the reason, safe to send back."""
        allowed = self._settings.roles_for(command)
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
            f"(participant attribute {self._settings.role_attribute!r}, set by the backend)"
        )

    def sees_room(self, role: str) -> bool:
        """Whether ``status`` shows this role the whole room, or only the sender's own part."""
        return bool(role) and role in self._settings.operator_roles
