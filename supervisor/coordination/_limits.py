"""Per-user limits across rooms and daemons: concurrent rooms and turns per minute.

The user is the room metadata's ``user_id``; rooms without one are never limited. Both
checks happen when the agent is about to answer (a "turn" is one answer composed for the
user), in atomic scripts, so two daemons cannot both let a user past a limit:

- rooms: the user's rooms are a sorted set (room → expiry). A room joins it at its first
  answer if the user is under ``max_rooms_per_user``; the lease keeper refreshes the entry
  with the lease, and it leaves when the room's agent ends (or expires with a dead daemon).
- turns: a sliding one-minute window of the user's answers, at most
  ``turns_per_minute_per_user``.

Limits are a cost guard, not a safety property: when Redis cannot answer, the agent answers.
"""

from __future__ import annotations

import logging
import uuid

from actors import CoordinationError
from supervisor.coordination._metrics import USER_LIMIT_REFUSALS
from supervisor.coordination._redis import RedisStore
from supervisor.coordination._settings import RedisSettings

__all__ = ("UserLimits",)

logger = logging.getLogger(__name__)

_MINUTE_MS = 60_000


class UserLimits:
    """The per-user limits as this daemon applies them.

    Args:
        settings: the ``[redis]`` settings.
        store: the Redis calls.
    """

    def __init__(self, settings: RedisSettings, store: RedisStore) -> None:
        self._settings = settings
        self._store = store
        self._ttl_ms = int(settings.lease_ttl_s * 1000)
        self._admitted: dict[str, str] = {}  # room → user admitted in it

    @property
    def enabled(self) -> bool:
        """True when at least one per-user limit is configured."""
        s = self._settings
        return s.max_rooms_per_user is not None or s.turns_per_minute_per_user is not None

    async def check_turn(self, room: str, user_id: str | None) -> str | None:
        """Decide whether the agent may answer ``user_id`` in ``room`` now (and count it).

        Returns:
            None to answer, else the short message to say instead.
        """
        if not user_id or not self.enabled:
            return None
        try:
            if not await self._admit(room, user_id):
                USER_LIMIT_REFUSALS.labels(limit="rooms").inc()
                return self._settings.room_limit_message
            most = self._settings.turns_per_minute_per_user
            if most is not None:
                turn_id = f"{self._settings.node_id}:{uuid.uuid4().hex}"
                if await self._store.count_turn(user_id, most, _MINUTE_MS, turn_id):
                    USER_LIMIT_REFUSALS.labels(limit="turns").inc()
                    return self._settings.turn_limit_message
        except CoordinationError:
            logger.warning("per-user limits unavailable; answering", extra={"room": room})
        return None

    async def refresh(self, room: str) -> None:
        """Keep ``room``'s place among its user's rooms (called with each lease renewal)."""
        user_id = self._admitted.get(room)
        most = self._settings.max_rooms_per_user
        if user_id is None or most is None:
            return
        try:
            if not await self._store.admit_user_room(user_id, room, most, self._ttl_ms):
                self._admitted.pop(room, None)  # lost its place: the next answer asks again
        except CoordinationError:
            pass  # counted by the store; the entry lives until its TTL

    async def leave(self, room: str) -> None:
        """The room's agent ended: free its place among its user's rooms. Never raises."""
        user_id = self._admitted.pop(room, None)
        if user_id is None or self._settings.max_rooms_per_user is None:
            return
        try:
            await self._store.leave_user_room(user_id, room)
        except CoordinationError:
            pass  # the entry expires after one lease TTL

    async def _admit(self, room: str, user_id: str) -> bool:
        most = self._settings.max_rooms_per_user
        if most is None:
            return True
        previous = self._admitted.get(room)
        if previous == user_id:
            return True
        if previous is not None:  # the room's metadata now names another user
            await self.leave(room)
        if not await self._store.admit_user_room(user_id, room, most, self._ttl_ms):
            return False
        self._admitted[room] = user_id
        return True
