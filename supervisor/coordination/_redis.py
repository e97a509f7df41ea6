"""The only code that talks to Redis: one redis-py asyncio client, the scripts, and the
translation of redis-py errors into ``CoordinationError`` (once, here).

Every call is bounded by ``[redis] timeout_s``. Nothing above this module names a redis-py
exception or builds a key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from actors import CoordinationError
from supervisor.coordination import _scripts
from supervisor.coordination._metrics import REDIS_ERRORS
from supervisor.coordination._settings import SENTINEL_SCHEME, RedisSettings, sentinel_parts

if TYPE_CHECKING:
    # redis-py is imported where a client is built (``_client``): it costs every process that
    # imports it ~6 MB (measured, RSS), and a daemon without ``[redis] url`` never needs it.
    from redis import asyncio as aioredis

__all__ = ("RedisStore",)

T = TypeVar("T")


class RedisStore:
    """Keys, scripts and bounded calls over one Redis client.

    Args:
        settings: the ``[redis]`` settings (``url`` must be set).
        client: a ready client (tests); None builds one from ``settings.url``.
    """

    def __init__(self, settings: RedisSettings, client: aioredis.Redis | None = None) -> None:
        self._sentinels: list[aioredis.Redis] = []
        """The clients of the sentinels themselves (a ``redis+sentinel://`` URL), closed too."""
        if client is None:
            if not settings.url:
                raise RuntimeError("RedisStore needs [redis] url")
            client, self._sentinels = _client(settings.url, settings.timeout_s)
        self._client = client
        self._timeout_s = settings.timeout_s
        self._prefix = settings.key_prefix
        self._grace_ms = int(settings.balance_grace_s * 1000)
        self._acquire = client.register_script(_scripts.ACQUIRE_LEASE)
        self._renew = client.register_script(_scripts.RENEW_LEASE)
        self._release = client.register_script(_scripts.RELEASE_LEASE)
        self._heartbeat = client.register_script(_scripts.HEARTBEAT)
        self._admit = client.register_script(_scripts.ADMIT_USER_ROOM)
        self._take_floor = client.register_script(_scripts.TAKE_FLOOR)
        self._renew_floor = client.register_script(_scripts.RENEW_FLOOR)
        self._release_floor = client.register_script(_scripts.RELEASE_FLOOR)
        self._turn = client.register_script(_scripts.COUNT_TURN)

    # -- keys ---------------------------------------------------------------------------------

    def lease_key(self, room: str) -> str:
        return f"{self._prefix}lease:{room}"

    def _epoch_key(self) -> str:
        return f"{self._prefix}epoch"

    def _nodes_key(self) -> str:
        return f"{self._prefix}nodes"

    def _load_key(self) -> str:
        return f"{self._prefix}load"

    def _free_key(self, room: str) -> str:
        return f"{self._prefix}free:{room}"

    def _user_rooms_key(self, user_id: str) -> str:
        return f"{self._prefix}user:{user_id}:rooms"

    def _user_turns_key(self, user_id: str) -> str:
        return f"{self._prefix}user:{user_id}:turns"

    # -- operations ---------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._call("ping", self._client.ping)

    async def acquire_lease(self, room: str, node: str, ttl_ms: int) -> tuple[int, int]:
        """(1, 0) won, (0, pttl) held by another node, (-1, wait ms) holding off after Redis
        lost its data, (-2, wait ms) left to a less-loaded node for now."""
        keys = [
            self.lease_key(room),
            self._epoch_key(),
            self._nodes_key(),
            self._load_key(),
            self._free_key(room),
        ]
        args: list[str | int] = [node, ttl_ms, self._grace_ms]
        result = await self._script("acquire", self._acquire, keys, args)
        status, ms = result
        return int(status), int(ms)

    async def renew_lease(self, room: str, node: str, ttl_ms: int) -> int:
        """1 extended, 2 re-claimed after Redis lost it, 0 lost to another node."""
        return int(await self._script("renew", self._renew, [self.lease_key(room)], [node, ttl_ms]))

    async def release_lease(self, room: str, node: str) -> bool:
        keys = [self.lease_key(room), self._load_key()]
        return bool(await self._script("release", self._release, keys, [node]))

    async def heartbeat(self, node: str, ttl_ms: int, leases: int) -> int:
        """Say this node is alive and holds ``leases`` (-1: it leaves); the live node count."""
        keys = [self._nodes_key(), self._load_key()]
        return int(await self._script("heartbeat", self._heartbeat, keys, [node, ttl_ms, leases]))

    async def lease_holder(self, room: str) -> str | None:
        """The node holding ``room``'s lease, if any (for tests, tools and benchmarks)."""

        async def get() -> Any:
            return await self._client.get(self.lease_key(room))

        value = await self._call("get", get)
        return None if value is None else _text(value)

    async def admit_user_room(self, user_id: str, room: str, most: int, ttl_ms: int) -> bool:
        keys = [self._user_rooms_key(user_id)]
        return bool(await self._script("admit", self._admit, keys, [room, most, ttl_ms]))

    async def leave_user_room(self, user_id: str, room: str) -> None:
        async def zrem() -> Any:
            return await self._client.zrem(self._user_rooms_key(user_id), room)

        await self._call("leave", zrem)

    async def count_turn(self, user_id: str, most: int, window_ms: int, turn_id: str) -> int:
        """0 counted, else ms until a turn leaves the window (refused)."""
        keys = [self._user_turns_key(user_id)]
        return int(await self._script("turn", self._turn, keys, [most, window_ms, turn_id]))

    def _floor_keys(self, room: str) -> list[str]:
        base = f"{self._prefix}floor:{room}"
        return [base, f"{base}:fence", f"{base}:last"]

    async def take_floor(
        self, room: str, holder: str, agent: str, ttl_ms: int, gap_ms: int
    ) -> tuple[int, int]:
        """(fence, 0) taken or held already; (0, 0) busy; (0, ms) wait that long (the gap)."""
        args: list[str | int] = [holder, agent, ttl_ms, gap_ms]
        fence, wait_ms = await self._script("floor", self._take_floor, self._floor_keys(room), args)
        return int(fence), int(wait_ms)

    async def renew_floor(self, room: str, value: str, ttl_ms: int) -> bool:
        keys = self._floor_keys(room)[:1]
        return bool(await self._script("floor_renew", self._renew_floor, keys, [value, ttl_ms]))

    async def release_floor(self, room: str, value: str, agent: str, keep_ms: int) -> bool:
        args: list[str | int] = [value, agent, keep_ms]
        keys = self._floor_keys(room)
        return bool(await self._script("floor_release", self._release_floor, keys, args))

    def conversation_key(self, conversation_id: str) -> str:
        return f"{self._prefix}conversation:{conversation_id}"

    async def append_news(self, key: str, fields: dict[str, str], keep: int) -> str:
        """XADD to a conversation's stream, trimmed to about ``keep`` entries; its id."""

        async def xadd() -> Any:
            entry: dict[Any, Any] = dict(fields)  # redis-py's field types are invariant
            return await self._client.xadd(key, entry, maxlen=keep, approximate=True)

        return _text(await self._call("news_add", xadd))

    async def last_news_id(self, key: str) -> str | None:
        async def newest() -> Any:
            return await self._client.xrevrange(key, count=1)

        entries = await self._call("news_read", newest)
        return _text(entries[0][0]) if entries else None

    async def read_news(
        self, key: str, after: str, block_ms: int
    ) -> list[tuple[str, dict[str, str]]]:
        """Entries of a conversation's stream after ``after``, waiting up to ``block_ms``."""

        async def xread() -> Any:
            return await self._client.xread({key: after}, count=100, block=block_ms)

        result = await self._call("news_read", xread)
        entries: list[tuple[str, dict[str, str]]] = []
        for _key, items in result or []:
            for entry_id, fields in items:
                entries.append((_text(entry_id), {_text(k): _text(v) for k, v in fields.items()}))
        return entries

    async def aclose(self) -> None:
        with anyio.move_on_after(self._timeout_s, shield=True), _translate("close"):
            # A Sentinel client's pool is not its own to close unless told so.
            await self._client.aclose(close_connection_pool=True)
            for sentinel in self._sentinels:
                await sentinel.aclose(close_connection_pool=True)

    # -- plumbing -----------------------------------------------------------------------------

    async def _script(
        self, op: str, script: Any, keys: Sequence[str], args: Sequence[str | int]
    ) -> Any:
        async def run() -> Any:
            return await script(keys=list(keys), args=list(args))

        return await self._call(op, run)

    async def _call(self, op: str, fn: Callable[[], Awaitable[T]]) -> T:
        with _translate(op), anyio.fail_after(self._timeout_s):
            return await fn()


def _client(url: str, timeout_s: float) -> tuple[aioredis.Redis, list[aioredis.Redis]]:
    """The client for ``url``, and for a Sentinel URL the sentinels' own clients."""
    from redis import asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.asyncio.sentinel import Sentinel
    from redis.backoff import NoBackoff

    # One immediate retry reconnects a pooled connection that Redis closed (after a restart,
    # or Sentinel's failover to another primary); callers keep their own cadence: no backoff.
    retry = Retry(NoBackoff(), 1)
    if not url.startswith(SENTINEL_SCHEME):
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=retry
        )
        return client, []
    parts = sentinel_parts(url)
    # redis-py asks the sentinels for the primary on every new connection and after a
    # connection error, so a failover costs a reconnect, not a restart.
    untyped: Any = Sentinel  # redis-py's Sentinel has no annotations
    sentinel = untyped(
        list(parts.sentinels), socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )
    primary: aioredis.Redis = sentinel.master_for(
        parts.service,
        redis_class=aioredis.Redis,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=retry,
        db=parts.db,
        username=parts.username,
        password=parts.password,
    )
    return primary, list(sentinel.sentinels)


@contextmanager
def _translate(op: str) -> Iterator[None]:
    """Map redis-py (and socket/timeout) errors to ``CoordinationError``, counted by ``op``."""
    try:
        yield
    except Exception as exc:
        error = _coordination_error(op, exc)
        if error is None:
            raise
        REDIS_ERRORS.labels(op=op).inc()
        raise error from exc


def _coordination_error(op: str, exc: Exception) -> CoordinationError | None:
    """What ``exc`` means to the caller, or None when it is not a Redis or network failure."""
    from redis import exceptions as redis_errors  # loaded with the client (``_client``)

    if isinstance(exc, redis_errors.AuthenticationError):  # a ConnectionError to redis-py: first
        return CoordinationError(
            f"Redis {op} failed: the server refused the credentials; check the user and "
            "password in [redis] url (REDIS_URL)",
            retryable=True,
        )
    if isinstance(
        exc, (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError, TimeoutError)
    ):
        return CoordinationError(
            f"Redis {op} failed: unreachable or too slow; check [redis] url and timeout_s",
            retryable=True,
        )
    if isinstance(exc, redis_errors.NoPermissionError):
        return CoordinationError(
            f"Redis {op} failed: the Redis user lacks a permission (NOPERM); it needs "
            "scripts (EVALSHA, EVAL) and the keys under [redis] key_prefix",
            retryable=False,
        )
    if isinstance(exc, redis_errors.RedisError):
        return CoordinationError(
            f"Redis {op} failed: the server refused the command; check the Redis version (>= 5)",
            retryable=False,
        )
    return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
