"""The floor of a room whose agents may run on different daemons: a Redis lock with a fence.

``floor:{room}`` holds ``agent:reply|fence`` while an agent speaks: taken with the
``TAKE_FLOOR`` script (which also makes another agent wait ``gap_ms`` after the last reply,
as the in-memory floor does), renewed at a third of its TTL while held, and given back with a
compare-and-delete. The fence is a counter incremented at each take, so a holder whose hold
expired (its daemon stalled) can neither renew nor release the floor someone else took since:
it learns it lost the floor instead (counted in ``voice_supervisor_floor_lost_total``). A
daemon that dies frees the floor after one TTL.

``release`` is called from a reply's ``finally`` and must not block: it hands the value to the
floor's own task (``run``, owned by the room host), which also renews. When Redis cannot be
reached an agent speaks anyway (a possible overlap beats a mute agent), logged once per floor.
"""

from __future__ import annotations

import logging

import anyio
from anyio.abc import TaskStatus

from actors import SYSTEM_CLOCK, Clock, CoordinationError
from supervisor.coordination._metrics import FLOOR_LOST
from supervisor.coordination._redis import RedisStore

__all__ = ("RedisFloor",)

logger = logging.getLogger(__name__)

_FIRST_POLL_S = 0.005
_MAX_POLL_S = 0.04  # a busy floor is polled at most this far apart: the hand-over's cost
_LAST_KEPT_MS = 60_000
_CLOSE_BACKSTOP_S = 2.0


class RedisFloor:
    """The ``actors.room.Floor`` of one room over Redis.

    Args:
        store: the Redis calls.
        room: the room's name.
        ttl_s: a hold frees itself this long after its last renewal.
        gap_s: after one agent's reply, how long before another agent may start.
        clock: time source.
    """

    def __init__(
        self,
        store: RedisStore,
        room: str,
        *,
        ttl_s: float,
        gap_s: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._store = store
        self._room = room
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._gap_ms = int(gap_s * 1000)
        self._clock = clock
        self._held: tuple[str, str] | None = None
        """(holder, the floor key's value) while this daemon's agent holds it."""
        self.fence = 0
        """The fence of the last hold taken here."""
        self._warned = False
        self._releases, self._released = anyio.create_memory_object_stream[tuple[str, str]](64)

    @property
    def holder(self) -> str | None:
        return None if self._held is None else self._held[0]

    async def take(self, who: str) -> None:
        if self._held is not None and self._held[0] == who:
            return
        agent = who.split(":", 1)[0]
        pause = _FIRST_POLL_S
        while True:
            try:
                fence, wait_ms = await self._store.take_floor(
                    self._room, who, agent, self._ttl_ms, self._gap_ms
                )
            except CoordinationError as exc:
                self._unreachable(exc)
                return
            if fence:
                self.fence = fence
                self._held = (who, f"{who}|{fence}")
                return
            await self._clock.sleep(wait_ms / 1000 if wait_ms else pause)
            pause = min(pause * 2, _MAX_POLL_S)

    def release(self, who: str) -> None:
        held = self._held
        if held is None or held[0] != who:
            return
        self._held = None
        try:
            self._releases.send_nowait(held)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # it frees itself after its TTL

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Give back released holds and renew the current one, until cancelled."""
        task_status.started()
        with self._releases, self._released:
            try:
                while True:
                    with anyio.move_on_after(self._ttl_ms / 3000):
                        who, value = await self._released.receive()
                        await self._give_back(who, value)
                        continue
                    await self._renew()
            finally:
                # The room's last agent here ended: give back what it held, so the others
                # need not wait for the TTL (bounded by Redis's own timeouts too).
                with anyio.move_on_after(_CLOSE_BACKSTOP_S, shield=True):
                    if self._held is not None:
                        self.release(self._held[0])
                    while True:
                        try:
                            who, value = self._released.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                        await self._give_back(who, value)

    def close(self) -> None:
        """Close the floor's queue (``run`` does on its way out; for a floor never run)."""
        self._releases.close()
        self._released.close()

    async def _give_back(self, who: str, value: str) -> None:
        try:
            await self._store.release_floor(
                self._room, value, who.split(":", 1)[0], max(_LAST_KEPT_MS, self._gap_ms)
            )
        except CoordinationError as exc:
            self._unreachable(exc)

    async def _renew(self) -> None:
        held = self._held
        if held is None:
            return
        try:
            kept = await self._store.renew_floor(self._room, held[1], self._ttl_ms)
        except CoordinationError as exc:
            self._unreachable(exc)
            return
        if not kept and self._held == held:
            self._held = None
            FLOOR_LOST.inc()
            logger.warning(
                "an agent's hold on the floor expired while it spoke", extra={"room": self._room}
            )

    def _unreachable(self, exc: CoordinationError) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "floor: Redis unreachable; agents speak without it",
                extra={"room": self._room, "error": type(exc).__name__},
            )
