"""Settings of a room actor (the ``[agent]`` section, less the room-selection rules)."""

from __future__ import annotations

from pydantic import Field, field_validator

from actors._settings import Settings

__all__ = (
    "CLOSE_BOUND_S",
    "CONNECT_BACKSTOP_S",
    "DEFAULT_COMMAND_ROLES",
    "DataSettings",
    "RoomSettings",
    "VoiceSettings",
)

CLOSE_BOUND_S = 1.0
"""How long closing one SDK stream, writer or generator may take as a room ends or a reply is
dropped: the close is shielded (it must run when the room is cancelled), and bounded so that a
close stuck on the native side cannot hold up the room's end."""

CONNECT_BACKSTOP_S = 20.0
"""Past ``connect_timeout_s``, a connect still under way is abandoned. The SDK ends its
connects itself, but one ICE wait (15 s) ignores our timeout, and a retry after one (the SDK
retries a connect whose transport did not come up, as it does under load) needs that long
again: cancelling sooner would throw away a join that was about to succeed."""

_OPERATOR = ("operator",)
DEFAULT_COMMAND_ROLES: dict[str, tuple[str, ...]] = {
    "end": _OPERATOR,
    "hand_over": _OPERATOR,
    "instructions": _OPERATOR,
    "interrupt": ("*",),
    "mute": _OPERATOR,
    "ping": ("*",),
    "reset": _OPERATOR,
    "say": _OPERATOR,
    "status": _OPERATOR,
    "unmute": _OPERATOR,
}
"""Who may send each command unless ``[data] command_roles`` says otherwise."""


class RoomSettings(Settings):
    identity: str = Field(default="voice-agent", min_length=1, max_length=128)
    """Participant identity the agent joins with (the same in every room)."""

    name: str = Field(default="Assistant", max_length=128)
    """Display name of the agent participant."""

    connect_timeout_s: float = Field(default=10.0, gt=0, le=120)
    """How long joining a room may take before the actor gives up (and is restarted): the
    SDK's three signal attempts share it, and opening the session (history) gets it again.
    The SDK's own ICE wait (15 s an attempt) is not shortened by it; a connect is abandoned
    at most ``CONNECT_BACKSTOP_S`` past it (see ``start_bound_s``)."""

    close_timeout_s: float = Field(default=5.0, gt=0, le=120)
    """How long the final steps of an actor (session summary, disconnect) may take."""

    inbox_size: int = Field(default=1024, ge=16, le=1_000_000)
    """Capacity of the actor's control mailbox (participant, track and data events)."""

    @property
    def start_bound_s(self) -> float:
        """The longest a room actor's start can take: the connect (ended by the SDK itself,
        or abandoned ``CONNECT_BACKSTOP_S`` past ``connect_timeout_s``), then opening the
        session. Whoever waits for a start waits at least this long."""
        return 2 * self.connect_timeout_s + CONNECT_BACKSTOP_S


class VoiceSettings(Settings):
    enabled: bool = True
    """Run the voice pipeline (listen, think, speak). Off: the agent only tracks the room."""

    min_interrupt_s: float = Field(default=0.6, ge=0, le=10)
    """A participant must speak this long while the agent speaks to interrupt it (barge-in):
    speech as the VAD hears it, pauses not counted. Shorter speech over the agent ("uh-huh",
    "okay", a cough: about 0.2–0.5 s of voice) is a listening noise, not a turn to answer."""

    min_interrupt_words: int = Field(default=1, ge=0, le=20)
    """Words the recogniser must have heard in that speech, backchannels ("uh-huh", "mm-hm",
    "yeah", "okay") not counted, before it interrupts the agent: a cough, a VAD blip or a
    listening noise does not. 0: any speech of ``min_interrupt_s`` interrupts. A backchannel
    said over the agent is not taken as a turn either, however long."""

    false_interruption_timeout_s: float = Field(default=1.5, ge=0, le=10)
    """When someone starts speaking over the agent, it pauses (within one audio chunk) until
    the words decide: a barge-in cuts the reply; otherwise (a cough, an "uh-huh") it resumes
    where it stopped as soon as the speaker stops, or after this long at the latest. 0: the
    agent never pauses and talks on until a barge-in."""

    audio_in_frame_ms: int = Field(default=40, ge=10, le=100)
    """Size of the audio frames read from each participant (larger = fewer events per second)."""

    audio_in_buffer_s: float = Field(default=2.0, ge=0.1, le=60)
    """Audio held per participant when STT lags; beyond it the oldest frames are dropped."""

    audio_out_chunk_ms: int = Field(default=80, ge=10, le=200)
    """Size of the chunks of TTS audio handed to the output at a time (fewer, larger chunks
    mean fewer trips through the event loop)."""

    audio_out_queue_ms: int = Field(default=0, ge=0, le=5000, multiple_of=10)
    """0: the agent paces its audio itself, ``audio_out_lead_ms`` ahead, and a silent agent
    costs no CPU. Above 0: the rtc SDK queues this much and paces natively (steadier when the
    event loop stalls, but its 10 ms tick costs ~25 CPU ms per room-second even in silence)."""

    audio_out_lead_ms: int = Field(default=60, ge=30, le=400, multiple_of=10)
    """With ``audio_out_queue_ms = 0``: how far ahead of playout the agent sends its audio; an
    event-loop stall shorter than this is inaudible. Barge-in drops what has not been sent."""

    floor_gap_ms: int = Field(default=150, ge=0, le=2000)
    """With several agents in a room: the pause after one agent's reply has played out before
    another may start, so that the caller hears the first one to its end (what the caller hears
    of a track lags the sender's playout by its jitter buffer)."""

    team_audio_out_queue_ms: int = Field(default=100, ge=0, le=5000, multiple_of=10)
    """``audio_out_queue_ms`` of the agents of ``[agents.NAME]`` profiles. Above 0 their tracks
    run without a break (native pacing), so what the caller hears of each agent keeps a steady
    delay: a track that stops between replies reached the caller ~140 ms later than the next
    agent's, and now and then up to ~0.9 s (bench/agents.py). 0 = as ``audio_out_queue_ms``."""

    apology: str = "Sorry, I ran into a problem. Could you say that again?"
    """Said (and captioned) when a provider fails during a reply."""

    providers_factory: str | None = Field(default=None, pattern=r"^[\w.]+:[\w]+$")
    """Import path ``package.module:function`` of your own providers: a callable taking the
    Config and returning ``actors.room.Providers``; replaces [stt], [llm] and [tts]."""

    @property
    def ring_capacity(self) -> int:
        return max(1, int(self.audio_in_buffer_s * 1000 / self.audio_in_frame_ms))


class DataSettings(Settings):
    commands: bool = True
    """Accept JSON commands on the ``agent.command`` topic (answered on ``agent.reply``)."""

    command_max_bytes: int = Field(default=16_384, ge=256, le=1_000_000)
    """Largest command accepted; larger ones get an error reply."""

    file_max_mb: float = Field(default=5.0, gt=0, le=1024)
    """Largest file accepted on the ``agent.file`` byte-stream topic."""

    file_mime_types: tuple[str, ...] = (
        "text/plain",
        "text/markdown",
        "text/csv",
        "application/json",
        "application/pdf",
        "image/png",
        "image/jpeg",
    )
    """MIME types accepted for uploads (``type/*`` allowed); others are refused with the reason."""

    role_attribute: str = Field(default="agent.role", min_length=1, max_length=128)
    """Participant attribute holding its role. Your backend writes it into the participant's
    token (``AccessToken.with_attributes``); a participant whose token lets it change its own
    attributes (``canUpdateOwnMetadata``) has no role, whatever the attribute says."""

    command_roles: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_COMMAND_ROLES)
    )
    """Roles allowed to send each command (``"*"`` = anyone), merged over the defaults:
    ``ping`` and ``interrupt`` for anyone; ``say``, ``mute``, ``unmute``, ``reset``,
    ``instructions``, ``status``, ``end`` and ``hand_over`` for ``operator`` only; ``[]`` =
    nobody. Example: ``command_roles = { say = ["operator", "host"] }``."""

    operator_roles: tuple[str, ...] = ("operator",)
    """Roles whose ``status`` shows the whole room; anyone else sees only what concerns them."""

    commands_per_minute: int = Field(default=60, ge=1, le=100_000)
    """Commands one participant may send per minute (token bucket; bursts up to
    ``burst``); over it, a command is refused unread, with the reason."""

    chat_per_minute: int = Field(default=30, ge=1, le=100_000)
    """Chat messages (``lk.chat``) one participant may send per minute; over it they are
    dropped unread and counted."""

    burst: int = Field(default=10, ge=1, le=10_000)
    """How many commands or chat messages a participant may send at once before the
    per-minute rate applies."""

    max_open_streams: int = Field(default=2, ge=1, le=1000)
    """Streams (chat, command, file) one participant may have open at once; more are
    refused and closed at once."""

    room_max_open_streams: int = Field(default=8, ge=1, le=10_000)
    """Streams open at once in a room, all participants together."""

    room_max_files: int = Field(default=20, ge=0, le=100_000)
    """Files a room accepts over its whole session; more are refused."""

    room_file_mb: float = Field(default=20.0, ge=0, le=100_000)
    """Bytes of files a room accepts over its whole session, in-flight uploads included;
    with ``room_max_open_streams`` it bounds the memory uploads can take."""

    @field_validator("command_roles")
    @classmethod
    def _known_commands(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        unknown = sorted(set(value) - set(DEFAULT_COMMAND_ROLES))
        if unknown:
            raise ValueError(
                f"unknown command(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(DEFAULT_COMMAND_ROLES))}"
            )
        return {**DEFAULT_COMMAND_ROLES, **value}

    @property
    def file_max_bytes(self) -> int:
        return int(self.file_max_mb * 1024 * 1024)

    @property
    def room_file_bytes(self) -> int:
        return int(self.room_file_mb * 1024 * 1024)

    def roles_for(self, command: str) -> tuple[str, ...]:
        """The roles allowed to send ``command`` (``"*"`` = anyone)."""
        return self.command_roles.get(command, ())

    def mime_allowed(self, mime: str) -> bool:
        mime = mime.split(";")[0].strip().lower()
        return any(
            mime == allowed or (allowed.endswith("/*") and mime.startswith(allowed[:-1]))
            for allowed in self.file_mime_types
        )
