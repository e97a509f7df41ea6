"""Settings of a room actor (the ``[agent]`` section, less the room-selection rules)."""

from __future__ import annotations

from pydantic import Field

from actors._settings import Settings

__all__ = ("RoomSettings",)


class RoomSettings(Settings):
    identity: str = Field(default="voice-agent", min_length=1, max_length=128)
    """Participant identity the agent joins with (the same in every room)."""

    name: str = Field(default="Assistant", max_length=128)
    """Display name of the agent participant."""

    connect_timeout_s: float = Field(default=10.0, gt=0, le=120)
    """How long joining a room may take before the actor gives up (and is restarted)."""

    close_timeout_s: float = Field(default=5.0, gt=0, le=120)
    """How long the final steps of an actor (session summary, disconnect) may take."""

    inbox_size: int = Field(default=1024, ge=16, le=1_000_000)
    """Capacity of the actor's control mailbox (participant, track and data events)."""


class VoiceSettings(Settings):
    enabled: bool = True
    """Run the voice pipeline (listen, think, speak). Off: the agent only tracks the room."""

    min_interrupt_s: float = Field(default=0.4, ge=0, le=10)
    """A participant must speak this long while the agent speaks to interrupt it (barge-in)."""

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

    @property
    def file_max_bytes(self) -> int:
        return int(self.file_max_mb * 1024 * 1024)

    def mime_allowed(self, mime: str) -> bool:
        mime = mime.split(";")[0].strip().lower()
        return any(
            mime == allowed or (allowed.endswith("/*") and mime.startswith(allowed[:-1]))
            for allowed in self.file_mime_types
        )
