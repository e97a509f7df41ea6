"""config.toml → one frozen, validated ``Config``.

Every section is optional and has working dev defaults. Secrets may come from the
environment (LIVEKIT_API_KEY, LIVEKIT_API_SECRET, BACKEND_TOKEN, DEEPGRAM_API_KEY,
OPENAI_API_KEY, CARTESIA_API_KEY, REDIS_URL); this is the only module that reads
``os.environ``. Errors name the key, the value and what is allowed. Dev-only settings (the dev
secret, the playground) are refused on a non-loopback ``[server] host`` (``_exposure.py``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails

from actors import ConfigError, Settings
from actors.persistence import PersistenceSettings
from actors.providers import LlmSettings, SttSettings, TtsSettings, overridden
from actors.room import (
    DEFAULT_AGENT,
    PROFILE_NAME,
    AgentProfile,
    DataSettings,
    RoomSettings,
    VoiceSettings,
)
from actors.tools import McpServerSettings, ToolCallSettings, ToolSettings
from supervisor._exposure import exposure_problems
from supervisor.coordination import RedisSettings
from supervisor.playground import PlaygroundSettings

__all__ = (
    "AgentSettings",
    "Config",
    "ConfigOverrides",
    "LiveKitSettings",
    "LoggingSettings",
    "ServerSettings",
    "SupervisorSettings",
    "config_to_wire",
    "load_config",
    "parse_config",
)

ConfigOverrides = Mapping[str, Mapping[str, Any]]
"""Keys laid over a config file's sections before validation (``run --playground``)."""


class LiveKitSettings(Settings):
    url: str = "ws://127.0.0.1:7880"
    """WebSocket URL of the LiveKit server (``ws://`` or ``wss://``)."""

    api_key: str = "devkey"
    """API key; the LIVEKIT_API_KEY environment variable overrides it."""

    api_secret: SecretStr = SecretStr("secret")
    """API secret; the LIVEKIT_API_SECRET environment variable overrides it."""

    @field_validator("url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://", "http://", "https://")):
            raise ValueError("must start with ws://, wss://, http:// or https://")
        return value


class ServerSettings(Settings):
    host: str = "127.0.0.1"
    """Address the webhook and health endpoint listens on."""

    port: int = Field(default=8089, ge=0, le=65535)
    """Port of the webhook and health endpoint (0 = any free port)."""

    max_body_kb: int = Field(default=256, ge=1, le=16_384)
    """Largest webhook body accepted; larger ones get 413."""

    body_timeout_s: float = Field(default=5.0, gt=0, le=300)
    """How long a webhook's body may take to arrive once its signed header is checked; a slower
    one gets 408 and its connection is closed (a body trickled in keeps no connection open)."""

    dedupe_size: int = Field(default=10_000, ge=100, le=10_000_000)
    """How many recent webhook event ids are remembered to drop repeats."""

    mailbox_size: int = Field(default=1024, ge=16, le=1_000_000)
    """Webhook events waiting for the supervisor; when full, webhooks get 503 + Retry-After."""


class AgentSettings(RoomSettings):
    rooms: tuple[str, ...] = ("*",)
    """Glob patterns of the room names the agent joins (``["support-*"]``); ``["*"]`` = all."""

    skip_rooms: tuple[str, ...] = ()
    """Glob patterns of room names the agent never joins, checked before ``rooms``."""

    def wants(self, room: str) -> bool:
        """True when the agent should join the room named ``room``."""
        if any(fnmatchcase(room, p) for p in self.skip_rooms):
            return False
        return any(fnmatchcase(room, p) for p in self.rooms)

    def room_settings(self) -> RoomSettings:
        return RoomSettings(**self.model_dump(include=set(RoomSettings.model_fields)))


class SupervisorSettings(Settings):
    reconcile_interval_s: float = Field(default=15.0, gt=0, le=3600)
    """How often the room list is compared with the running actors (a lost webhook costs one)."""

    max_rooms: int = Field(default=200, ge=1, le=100_000)
    """Most room agents this daemon runs at once (one per room, or one per ``[agents.NAME]``
    a room names); more wait, and /readyz says so."""

    drain_timeout_s: float = Field(default=10.0, gt=0, le=600)
    """On SIGTERM/SIGINT: how long actors and the outbox get to finish before they are cancelled."""

    restart_backoff_initial_s: float = Field(default=0.5, gt=0, le=60)
    """First delay before a crashed room actor is restarted; doubles on each crash."""

    restart_backoff_max_s: float = Field(default=30.0, gt=0, le=3600)
    """Longest delay between restarts of one room actor."""

    max_restarts: int = Field(default=5, ge=0, le=1000)
    """Restarts allowed within ``restart_window_s`` before the daemon gives up on a room."""

    restart_window_s: float = Field(default=300.0, gt=0, le=86_400)
    """Window over which ``max_restarts`` is counted."""

    workers: int | None = Field(default=None, ge=0, le=256)
    """Room-worker processes (unset = one per core); 0 runs rooms in the supervisor process."""

    rooms_per_worker: int = Field(default=100, ge=1, le=10_000)
    """Most room agents one worker process hosts (the rtc SDK's per-process cost grows with
    rooms²); a room's agents go to one worker while it has room."""

    worker_init_timeout_s: float = Field(default=60.0, gt=0, le=600)
    """How long a starting worker may take to load its models and report ready."""

    worker_heartbeat_s: float = Field(default=2.0, gt=0, le=60)
    """Ping period of each worker; a worker silent for five periods (no pong: wedged, stopped,
    or no longer reading its pipe) is killed and restarted."""

    worker_memory_warn_mb: float | None = Field(default=1500.0, gt=0, le=1_000_000)
    """A room host whose resident memory passes this is logged once (a worker with the local
    models loaded holds ~345 MB and adds ~4 MB per room in a call). Unset = never."""

    worker_memory_limit_mb: float | None = Field(default=2500.0, gt=0, le=1_000_000)
    """A room worker whose resident memory passes this is retired: it takes no new rooms, and
    once its last room has ended it exits and starts afresh, so no call is cut. The rtc SDK
    keeps some native memory of every room a process has joined (~0.2–1 MB each), which only
    a new process gives back. Unset = never (a host in the supervisor's process,
    ``workers = 0``, only warns)."""

    @property
    def worker_count(self) -> int:
        if self.workers is None:
            return os.cpu_count() or 1
        return self.workers


class LoggingSettings(Settings):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log level. Transcripts and identities only appear at DEBUG, under ``pii.*`` fields."""

    format: Literal["text", "json"] = "text"
    """``text`` for humans, ``json`` for one JSON object per line."""


class Config(Settings):
    livekit: LiveKitSettings = LiveKitSettings()
    server: ServerSettings = ServerSettings()
    tools: tuple[ToolSettings, ...] = ()
    """Declared tools, ``[[tools]]`` (with the backend's ``GET /v1/tools`` and MCP servers')."""
    mcp_servers: tuple[McpServerSettings, ...] = ()
    """MCP servers whose tools are offered, ``[[mcp_servers]]`` (streamable HTTP or stdio)."""
    tool_calls: ToolCallSettings = ToolCallSettings()
    agent: AgentSettings = AgentSettings()
    persistence: PersistenceSettings = PersistenceSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    voice: VoiceSettings = VoiceSettings()
    stt: SttSettings = SttSettings()
    llm: LlmSettings = LlmSettings()
    tts: TtsSettings = TtsSettings()
    data: DataSettings = DataSettings()
    logging: LoggingSettings = LoggingSettings()
    redis: RedisSettings = RedisSettings()
    playground: PlaygroundSettings = PlaygroundSettings()
    agents: dict[str, AgentProfile] = Field(default_factory=dict)
    """Agent profiles, ``[agents.NAME]``; a room's metadata ``"agents": ["NAME", ...]`` picks
    them (one agent each, one speaker at a time). Without it a room gets ``[agent]`` alone."""

    @field_validator("agents")
    @classmethod
    def _profiles(
        cls, value: dict[str, AgentProfile], info: ValidationInfo
    ) -> dict[str, AgentProfile]:
        bad = sorted(name for name in value if not PROFILE_NAME.match(name))
        if bad:
            raise ValueError(
                f"profile name(s) {', '.join(map(repr, bad))} not allowed: use lowercase "
                "letters, digits, - and _ (at most 32, starting with a letter)"
            )
        agent = info.data.get("agent")
        seen = {} if agent is None else {agent.identity: "[agent]"}
        for name, profile in value.items():
            other = seen.get(profile.identity)
            if other is not None:
                raise ValueError(
                    f"[agents.{name}] identity {profile.identity!r} is already {other}'s; "
                    "give every agent its own identity"
                )
            seen[profile.identity] = f"[agents.{name}]"
        return value

    def profile(self, name: str) -> AgentProfile:
        """The profile named ``name``; ``""`` is ``[agent]``'s (``KeyError`` if unknown)."""
        if name == DEFAULT_AGENT:
            return AgentProfile(identity=self.agent.identity, name=self.agent.name)
        return self.agents[name]

    def profiles(self) -> dict[str, AgentProfile]:
        """Every profile by name, the default (``""``) first."""
        return {DEFAULT_AGENT: self.profile(DEFAULT_AGENT), **self.agents}

    def stages(self, agent: str) -> tuple[SttSettings, LlmSettings, TtsSettings]:
        """The provider settings of agent ``agent``: ``[stt]``, ``[llm]`` and ``[tts]`` with its
        profile's own keys (``[agents.NAME.llm]``...) in place; the default agent's are those."""
        profile = self.agents.get(agent)
        if profile is None:
            return self.stt, self.llm, self.tts
        return (
            overridden(self.stt, profile.stt),
            overridden(self.llm, profile.llm),
            overridden(self.tts, profile.tts),
        )


_ENV_SECRETS: tuple[tuple[str, str, str], ...] = (
    ("LIVEKIT_API_KEY", "livekit", "api_key"),
    ("LIVEKIT_API_SECRET", "livekit", "api_secret"),
    ("BACKEND_TOKEN", "persistence", "backend_token"),
    ("DEEPGRAM_API_KEY", "stt", "api_key"),
    ("OPENAI_API_KEY", "llm", "api_key"),
    ("CARTESIA_API_KEY", "tts", "api_key"),
    ("REDIS_URL", "redis", "url"),
)


def parse_config(
    data: Mapping[str, Any], *, source: str = "config", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate a config mapping (as read from TOML), with secrets from ``environ``.

    Raises:
        ConfigError: listing every invalid or unknown key with the value and what is allowed.
    """
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    env = os.environ if environ is None else environ
    for var, section, key in _ENV_SECRETS:
        if env.get(var) and (section not in merged or isinstance(merged[section], dict)):
            merged.setdefault(section, {})[key] = env[var]
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    stage_lines = _stage_problems(config)
    if stage_lines:
        lines = [f"{source}: {len(stage_lines)} invalid setting(s):", *stage_lines]
        raise ConfigError("\n".join(lines))
    base = Path(source).parent if source.endswith(".toml") else Path.cwd()
    data_dir = config.persistence.data_dir
    if not data_dir.is_absolute():
        persistence = config.persistence.model_copy(
            update={"data_dir": (base / data_dir).resolve()}
        )
        config = config.model_copy(update={"persistence": persistence})
    problems = exposure_problems(config)
    if problems:
        lines = [f"{source}: {len(problems)} setting(s) unsafe beyond loopback:"]
        raise ConfigError("\n".join(lines + [f"  {p}" for p in problems]))
    return config


def load_config(
    path: Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: ConfigOverrides | None = None,
) -> Config:
    """Read and validate a config.toml; ``None`` gives the built-in dev defaults.
    ``overrides`` replace keys of the file's sections (the environment's secrets still win).

    Raises:
        ConfigError: the file is missing, not TOML, or has invalid values.
    """
    if path is None:
        return parse_config(_overlay({}, overrides), environ=environ)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(_overlay(data, overrides), source=str(path), environ=environ)


def _overlay(data: Mapping[str, Any], overrides: ConfigOverrides | None) -> dict[str, Any]:
    merged = dict(data)
    for section, values in (overrides or {}).items():
        base = merged.get(section, {})
        # A section that is not a table stays as it is: validation names it as invalid.
        merged[section] = {**base, **values} if isinstance(base, Mapping) else base
    return merged


def config_to_wire(config: Config) -> dict[str, Any]:
    """The config as plain JSON data with secrets revealed, for a worker process's pipe."""

    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return dict(plain(config.model_dump(mode="python")))


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: {exc.error_count()} invalid setting(s):"]
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = f"[{loc[0]}] {'.'.join(loc[1:])}" if len(loc) > 1 else loc[0] if loc else "?"
        lines.append(_error_line(key, error, _allowed_keys(loc[:-1])))
    return "\n".join(lines)


def _stage_problems(config: Config) -> list[str]:
    """What each profile's own provider keys, applied over their section, make invalid."""
    lines = []
    for name, profile in config.agents.items():
        for stage in ("stt", "llm", "tts"):
            base: Settings = getattr(config, stage)
            try:
                overridden(base, getattr(profile, stage))
            except ValidationError as exc:
                for error in exc.errors():
                    key = f"[agents.{name}.{stage}] {'.'.join(map(str, error['loc']))}"
                    lines.append(_error_line(key, error, sorted(type(base).model_fields)))
    return lines


def _error_line(key: str, error: ErrorDetails, allowed: list[str]) -> str:
    if error["type"] == "extra_forbidden":
        return f"  {key}: unknown key; allowed keys here: {', '.join(allowed)}"
    value = error.get("input")
    secret = any(w in key for w in ("secret", "token", "api_key", "password"))
    # A URL may carry credentials (redis://:password@host): never echo those back.
    if isinstance(value, str) and re.search(r"://[^/@\s]*@", value):
        secret = True
    shown = "<secret>" if secret else repr(value)
    return f"  {key} = {shown}: {error['msg']}"


def _allowed_keys(loc: list[str]) -> list[str]:
    model: type[Settings] = Config
    parts = iter(loc)
    for part in parts:
        field = model.model_fields.get(part)
        annotation = None if field is None else field.annotation
        if get_origin(annotation) is dict:  # [agents.NAME]: the table's name, then its keys
            annotation = get_args(annotation)[1]
            next(parts, None)
        if not (isinstance(annotation, type) and issubclass(annotation, Settings)):
            return []
        model = annotation
    return sorted(model.model_fields)
