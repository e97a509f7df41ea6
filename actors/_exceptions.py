"""The one exception tree of voice-supervisor.

    VoiceSupervisorError
    ├── ConfigError                 a config file or value is wrong (names the key and the fix)
    ├── ActorError
    │   ├── ActorStartError         a room actor could not join its room
    │   └── ActorCrashed            a room actor failed while running
    ├── ProviderError               an STT, LLM or TTS vendor failed (``retryable``: may retry)
    │   ├── ProviderConnectionError
    │   ├── ProviderTimeoutError
    │   └── ProviderStatusError
    ├── PersistenceError
    │   ├── OutboxFullError         the durable outbox refused an event
    │   └── BackendRejected         the backend answered with a final 4xx
    ├── CoordinationError           Redis (leases, limits, locks) failed (``retryable``: may retry)
    └── ToolError                   a tool call failed (``code``; ``retryable``: may retry)

Misuse of an object (wrong lifecycle transition) raises ``IllegalTransition``, a ``RuntimeError``.
Messages say what was attempted; they never carry user text, tokens or secrets.
"""

from __future__ import annotations

__all__ = (
    "ActorCrashed",
    "ActorError",
    "ActorStartError",
    "BackendRejected",
    "ConfigError",
    "CoordinationError",
    "IllegalTransition",
    "OutboxFullError",
    "PersistenceError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderStatusError",
    "ProviderTimeoutError",
    "ToolError",
    "VoiceSupervisorError",
)


class VoiceSupervisorError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(VoiceSupervisorError):
    """A configuration file or value is invalid; the message names the key and what is allowed."""


class ActorError(VoiceSupervisorError):
    """A room actor failed."""


class ActorStartError(ActorError):
    """A room actor could not join its room (connect failed or timed out)."""


class ActorCrashed(ActorError):
    """A running room actor raised; the registry decides whether to restart it."""


class ProviderError(VoiceSupervisorError):
    """An STT, LLM or TTS provider failed.

    Attributes:
        vendor: the provider's name, e.g. ``"deepgram"``.
        retryable: True when the same request may succeed if tried again.
    """

    def __init__(self, message: str, *, vendor: str, retryable: bool) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.retryable = retryable


class ProviderConnectionError(ProviderError):
    """The provider could not be reached, or dropped the connection."""

    def __init__(self, message: str, *, vendor: str) -> None:
        super().__init__(message, vendor=vendor, retryable=True)


class ProviderTimeoutError(ProviderError):
    """The provider did not answer within the configured timeout."""

    def __init__(self, message: str, *, vendor: str) -> None:
        super().__init__(message, vendor=vendor, retryable=True)


class ProviderStatusError(ProviderError):
    """The provider answered with an error status; 4xx is final except 408 and 429."""

    def __init__(
        self, message: str, *, vendor: str, status: int, retryable: bool | None = None
    ) -> None:
        # The status decides unless the vendor's body says more (a 429 for an exhausted quota
        # is final; a 400 for a bad handshake parameter too).
        if retryable is None:
            retryable = status >= 500 or status in (408, 429)
        super().__init__(message, vendor=vendor, retryable=retryable)
        self.status = status


class PersistenceError(VoiceSupervisorError):
    """Storing or shipping events failed."""


class OutboxFullError(PersistenceError):
    """The durable outbox could not accept an event (disk full or closed)."""


class BackendRejected(PersistenceError):
    """The backend refused a request with a final 4xx status.

    Attributes:
        status: the HTTP status code.
        reason: the body's explanation, truncated.
    """

    def __init__(self, message: str, *, status: int, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class CoordinationError(VoiceSupervisorError):
    """The shared store (Redis) behind leases, per-user limits and locks failed.

    Attributes:
        retryable: True when the same call may succeed later (connection lost, timeout).
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class ToolError(VoiceSupervisorError):
    """A tool call failed: its endpoint refused, timed out or was unreachable, its arguments
    broke its schema, or its result was too large.

    Attributes:
        code: a short machine-readable reason (``timeout``, ``unavailable``, ``refused``,
            ``invalid_arguments``, ``too_large``, ``unknown_tool``).
        retryable: True when the same call may succeed if tried again.
    """

    def __init__(self, message: str, *, code: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class IllegalTransition(RuntimeError):
    """A lifecycle object was asked to move to a state it cannot reach from where it is."""
