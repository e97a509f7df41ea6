"""Agent profiles: who an agent is in a room (``[agents.NAME]``), and which ones a room gets.

A profile is an identity with its own display name, instructions, voice, language, a
``speaks`` policy and, if it says so, its own providers (``[agents.NAME.llm]`` and the like:
keys of ``[stt]``/``[llm]``/``[tts]`` that differ for it). The ``[agent]`` section is the
default profile, named ``""``: a room whose metadata names no ``agents`` gets it alone,
exactly as before profiles existed. A room whose metadata says ``"agents": ["concierge",
"notes"]`` gets those profiles, in that order; a name with no profile is logged and skipped
(the others still join), and when none is left the room gets the default agent rather than
none.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from actors._settings import Settings

__all__ = (
    "DEFAULT_AGENT",
    "PROFILE_NAME",
    "AgentProfile",
    "Speaks",
    "room_agents",
)

logger = logging.getLogger(__name__)

DEFAULT_AGENT = ""
"""The name of the default profile (the ``[agent]`` section)."""

PROFILE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
"""What an ``[agents.NAME]`` may be called (it appears in lease keys and log fields)."""

_MAX_AGENTS_PER_ROOM = 8


class Speaks(StrEnum):
    """When an agent talks."""

    ALWAYS = "always"
    """Answers every user turn that names no other agent (the default)."""
    WHEN_ADDRESSED = "when_addressed"
    """Answers only a turn that names it, or when the speaking agent hands over to it."""
    NEVER = "never"
    """A listener: hears and records, never speaks (a note-taker)."""


class AgentProfile(Settings):
    identity: str = Field(min_length=1, max_length=128)
    """Participant identity of this agent in the room (unique among the agents)."""

    name: str = Field(default="", max_length=128)
    """Display name; also a name users address it by ("" = the profile's own name)."""

    aliases: tuple[str, ...] = ()
    """Other names a user may address it by ("Sam", "the specialist")."""

    instructions: str | None = None
    """LLM instructions of this agent (None = ``[llm] instructions``); a room's metadata
    ``instructions`` still win, as for the default agent."""

    voice: str | None = None
    """TTS voice of this agent (None = the provider's default); a room's ``voice`` wins."""

    language: str | None = None
    """Language of this agent (None = the provider's default); a room's ``language`` wins."""

    speaks: Speaks = Speaks.ALWAYS
    """``always``, ``when_addressed`` (named in the user's turn, or handed over to) or
    ``never`` (a listener)."""

    stt: dict[str, Any] = Field(default_factory=dict)
    """``[stt]`` keys this agent uses instead (``provider``, ``language``, ...); the others are
    ``[stt]``'s. Empty (the default): the process's shared chain."""

    llm: dict[str, Any] = Field(default_factory=dict)
    """``[llm]`` keys this agent uses instead (``provider``, ``model``, ``base_url``, ...); the
    others are ``[llm]``'s. Empty (the default): the process's shared chain."""

    tts: dict[str, Any] = Field(default_factory=dict)
    """``[tts]`` keys this agent uses instead (``provider``, ``cartesia_model``, ...; ``voice``
    above is simpler for a voice alone); the others are ``[tts]``'s. Empty (the default): the
    process's shared chain."""

    @property
    def own_providers(self) -> bool:
        """Whether any stage of this agent is not the process's shared one."""
        return bool(self.stt or self.llm or self.tts)

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not a.strip() for a in value):
            raise ValueError("aliases must not be empty strings")
        return value


def room_agents(metadata: str, profiles: Mapping[str, AgentProfile]) -> tuple[str, ...]:
    """The profile names a room's metadata asks for, known ones only, in order, no repeats.

    Without an ``agents`` list (or with nothing usable in it): the default agent alone.
    """
    try:
        raw = json.loads(metadata) if metadata.strip() else {}
    except ValueError:
        raw = {}
    asked = raw.get("agents") if isinstance(raw, dict) else None
    if asked is None:
        return (DEFAULT_AGENT,)
    if not isinstance(asked, list):
        logger.warning("room metadata agents is not a list; the default agent joins")
        return (DEFAULT_AGENT,)
    names: list[str] = []
    for item in asked:
        if isinstance(item, str) and item in profiles:
            if item not in names:
                names.append(item)
        else:
            # The name may be a backend's typo or a profile removed from config: say which.
            logger.warning(
                "room metadata names an agent with no [agents.NAME] profile; skipped",
                extra={"agent": str(item)[:64]},
            )
    if len(names) > _MAX_AGENTS_PER_ROOM:
        logger.warning("room metadata names too many agents; the first ones join")
        names = names[:_MAX_AGENTS_PER_ROOM]
    return tuple(names) or (DEFAULT_AGENT,)
