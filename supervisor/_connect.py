"""``voice-supervisor check-config --connect``: try each service the config names, once.

What ``run`` will need from the network, asked the smallest question that proves it works:

- **LiveKit**: the room service lists the rooms of one unlikely name with the configured key
  pair (``[livekit] url``, ``api_key``, ``api_secret``): the URL answers, it is a LiveKit
  server, and it takes the key pair (the same call the reconcile loop makes).
- **The backend** (``[persistence] backend_url``): an empty batch of events, with the token;
  nothing is stored.
- **Redis** (``[redis] url``): PING.
- **The providers**: ``check-providers``' tiny request to every network vendor of each chain
  (Deepgram, OpenAI-compatible, Cartesia); the local ones are built by ``check-config``
  anyway and need no connection.

Each probe is bounded, and says on failure which setting to fix and how. This is the one place
where the LiveKit API client's errors are translated for it. Nothing is printed that holds a
secret (a Redis URL's password is masked).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import anyio
from livekit import api

from actors import CoordinationError, PersistenceError
from actors.persistence import probe_backend
from supervisor._check_providers import check_providers
from supervisor._config import Config, LiveKitSettings
from supervisor.coordination import RedisSettings, RedisStore

__all__ = ("Probe", "connect_checks")

_LIVEKIT_TIMEOUT_S = 5.0
_PROBE_ROOM = "voice-supervisor-check-config"
"""The room name the LiveKit probe lists (it need not exist: the answer is an empty list)."""


@dataclass(frozen=True, slots=True)
class Probe:
    """One service tried.

    Attributes:
        setting: the setting the probe tried (``[livekit] url``, ``[stt] deepgram``, ...).
        ok: whether it answered as ``run`` needs.
        detail: what answered; or what went wrong, naming the setting and how to fix it.
        took_s: how long it took.
    """

    setting: str
    ok: bool
    detail: str
    took_s: float


async def connect_checks(config: Config, *, providers: bool = True) -> list[Probe]:
    """Try every service the config names, one after the other.

    Args:
        config: the configuration to try.
        providers: also check the network providers (False when building them failed
            already: the same problem would be reported twice).

    Returns:
        One probe per service, LiveKit first.
    """
    probes = [await _timed("[livekit] url", lambda: _livekit(config.livekit))]
    persistence = config.persistence
    if persistence.backend_url is not None:
        probes.append(await _timed("[persistence] backend_url", lambda: _backend(config)))
    if config.redis.url:
        probes.append(await _timed("[redis] url", lambda: _redis(config.redis)))
    if providers and config.voice.enabled and not config.voice.providers_factory:
        for r in await check_providers(config, remote_only=True):
            setting = f"[{r.stage}] {r.provider}"
            detail = r.detail if r.ok else f"{setting} (check-providers): {r.detail}"
            probes.append(Probe(setting, r.ok, detail, r.total_s))
    return probes


async def _timed(setting: str, probe: Callable[[], Awaitable[str]]) -> Probe:
    began = time.perf_counter()
    try:
        detail = await probe()
    except _Refused as exc:
        return Probe(setting, False, str(exc), time.perf_counter() - began)
    return Probe(setting, True, detail, time.perf_counter() - began)


class _Refused(Exception):
    """A probe's failure, already worded for the operator."""


async def _livekit(settings: LiveKitSettings) -> str:
    url = settings.url
    where = f"[livekit] url = {url!r}"
    keys = "[livekit] api_key / api_secret (LIVEKIT_API_KEY / LIVEKIT_API_SECRET)"
    client = api.LiveKitAPI(url, settings.api_key, settings.api_secret.get_secret_value())
    try:
        with anyio.fail_after(_LIVEKIT_TIMEOUT_S):
            await client.room.list_rooms(api.ListRoomsRequest(names=[_PROBE_ROOM]))
    except TimeoutError:
        raise _Refused(
            f"{where}: no answer within {_LIVEKIT_TIMEOUT_S:g} s; check the URL, the network "
            "and that the server runs"
        ) from None
    except api.TwirpError as exc:
        if exc.status in (401, 403):
            raise _Refused(
                f"{keys}: the server at {url} refused the key pair (HTTP {exc.status}); use a "
                "pair from the server's `keys` (livekit.yaml) or the project's API keys (or, if "
                "that is not the LiveKit server, fix [livekit] url)"
            ) from None
        if exc.status == 404:
            raise _Refused(
                f"{where}: no LiveKit room service there (HTTP 404); give the server's own "
                "address (ws://host:7880 or wss://host), without a path"
            ) from None
        raise _Refused(
            f"{where}: the room service answered HTTP {exc.status} ({exc.code}); check the "
            "server's log"
        ) from None
    except aiohttp.ClientConnectorDNSError:
        raise _Refused(f"{where}: the host does not resolve; check the URL and DNS") from None
    except aiohttp.ClientConnectorCertificateError:
        raise _Refused(
            f"{where}: the server's TLS certificate is not trusted here (expired, self-signed or "
            "for another name); fix the certificate or the host name in the URL"
        ) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise _Refused(
            f"{where}: nothing answers there ({type(exc).__name__}); check the host, the port "
            "and that the server runs (and the firewall between them)"
        ) from None
    finally:
        await client.aclose()
    return f"the room service at {url} answered and took the key pair {settings.api_key!r}"


async def _backend(config: Config) -> str:
    settings = config.persistence
    try:
        await probe_backend(settings)
    except PersistenceError as exc:
        raise _Refused(f"[persistence] backend_url = {settings.backend_url!r}: {exc}") from None
    token = "with BACKEND_TOKEN" if settings.backend_token is not None else "without a token"
    return f"{settings.backend_url} took an empty batch of events ({token})"


async def _redis(settings: RedisSettings) -> str:
    shown = _masked(settings.url or "")
    store = RedisStore(settings)
    try:
        await store.ping()
    except CoordinationError as exc:
        raise _Refused(f"[redis] url = {shown!r} (REDIS_URL): {exc}") from None
    finally:
        try:
            await store.aclose()
        except CoordinationError:
            pass
    return f"{shown} answered PING"


def _masked(url: str) -> str:
    """The URL without its password (``redis://user:***@host``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
