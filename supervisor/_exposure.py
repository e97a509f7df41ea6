"""Settings that are only safe on loopback, checked whenever a config is loaded.

A daemon whose ``[server] host`` is reachable from other machines must not run with
livekit-server's public dev secret (anyone could forge webhooks and mint room tokens), nor serve
the playground (it hands out room tokens and transcripts) unless ``[playground] allow_remote``
says so on purpose. ``parse_config`` turns these problems into a ``ConfigError``, so
``check-config`` reports them too.

This module imports nothing of ours at run time: ``_config`` and the playground both use it.
"""

from __future__ import annotations

import ipaddress
import logging
import warnings
from typing import TYPE_CHECKING

from jwt.warnings import InsecureKeyLengthWarning

if TYPE_CHECKING:
    from supervisor._config import Config, LiveKitSettings
    from supervisor.playground import PlaygroundSettings

__all__ = (
    "DEV_API_KEY",
    "DEV_API_SECRETS",
    "exposure_problems",
    "is_loopback",
    "note_dev_keys",
    "playground_problem",
)

logger = logging.getLogger(__name__)

DEV_API_KEY = "devkey"
"""The key of ``livekit-server --dev``."""

DEV_API_SECRETS = frozenset({"secret", "devkey"})
"""Secrets published with ``livekit-server --dev`` (its pair is devkey/secret): never a secret."""


def is_loopback(host: str) -> bool:
    """True for a name or address only this machine reaches: ``localhost``, 127.0.0.0/8, ``::1``
    (with or without brackets). An empty host or a wildcard (``0.0.0.0``, ``::``) is not."""
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def playground_problem(settings: PlaygroundSettings, host: str) -> str | None:
    """Why the playground must not start on ``[server] host = host``, or None."""
    if not settings.enabled or settings.allow_remote or is_loopback(host):
        return None
    return (
        f"[playground] enabled = true with [server] host = {host!r}, which is not loopback: "
        "anyone who reaches the port could mint room tokens and read conversations; "
        "bind [server] host to 127.0.0.1, or set [playground] allow_remote = true on purpose"
    )


def exposure_problems(config: Config) -> list[str]:
    """Every setting that is unsafe for the configured ``[server] host`` (empty: none)."""
    host = config.server.host
    problems: list[str] = []
    if not is_loopback(host) and config.livekit.api_secret.get_secret_value() in DEV_API_SECRETS:
        problems.append(
            f"[livekit] api_secret is livekit-server's public dev secret, and [server] host = "
            f"{host!r} is not loopback: anyone could sign webhooks for this daemon; "
            "set LIVEKIT_API_SECRET (or [livekit] api_secret) to your server's secret"
        )
    playground = playground_problem(config.playground, host)
    if playground is not None:
        problems.append(playground)
    return problems


def note_dev_keys(settings: LiveKitSettings) -> None:
    """When the dev secret is in use, say so once and silence PyJWT's key-length warning.

    PyJWT warns on every token signed with a key shorter than 32 bytes; the dev secret is
    short on purpose and the config check keeps it on loopback, so one clear line replaces the
    noise. Any other short secret keeps PyJWT's warning: that one is a real problem.
    """
    if settings.api_secret.get_secret_value() not in DEV_API_SECRETS:
        return
    warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)
    logger.warning(
        "LiveKit dev key pair in use (livekit-server --dev): for a local dev server only; "
        "set LIVEKIT_API_KEY and LIVEKIT_API_SECRET for a real one"
    )
