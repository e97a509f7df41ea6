"""The webhook endpoint: LiveKit's events, verified and de-duplicated."""

from __future__ import annotations

from supervisor.webhook._dedupe import RecentIds
from supervisor.webhook._endpoint import WebhookEndpoint
from supervisor.webhook._token import WebhookVerifier

__all__ = ("RecentIds", "WebhookEndpoint", "WebhookVerifier")
