"""Errors of the persistence package, below ``PersistenceError`` in the one tree
(``actors._exceptions``)::

    PersistenceError
    ├── OutboxFullError         (actors._exceptions) emit() refused an event
    ├── OutboxLockedError       another live process owns this outbox file
    ├── BackendUnavailable      retryable: unreachable, timed out, 5xx, 408/409/425/429, or a
    │                           deployment problem (401/403/404/405) that a retry may outlive
    └── BackendRejected         (actors._exceptions) a final 4xx: the request itself is wrong
        └── EventRejected       a final 4xx that names one event of the batch

Only ``_client.py`` raises the backend errors, translating httpx errors and statuses in one
place. Messages say what was attempted and the setting to check; never event contents.
"""

from __future__ import annotations

from actors._exceptions import BackendRejected, PersistenceError

__all__ = (
    "BackendUnavailable",
    "EventRejected",
    "OutboxLockedError",
    "is_retryable",
)


class OutboxLockedError(PersistenceError):
    """Another live process holds the lock of this outbox file."""


class BackendUnavailable(PersistenceError):
    """The backend could not take the request now; the same request may succeed later.

    Attributes:
        kind: ``"status"`` (an HTTP error status), ``"timeout"`` or ``"connection"``.
        status: the HTTP status, or None when no response came (connection error, timeout).
        retry_after: seconds the backend asked us to wait (``Retry-After``), or None.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


class EventRejected(BackendRejected):
    """The backend refused a batch because of one named event; the others are fine.

    Attributes:
        event_id: the id of the refused event.
    """

    def __init__(self, message: str, *, status: int, reason: str, event_id: str) -> None:
        super().__init__(message, status=status, reason=reason)
        self.event_id = event_id


def is_retryable(exc: BaseException) -> bool:
    """True for errors that a later attempt of the same request may not meet again."""
    return isinstance(exc, BackendUnavailable)
