"""Several daemons through Redis: room leases (one agent per room, failover), per-user limits
across rooms, the floor of a room whose agents are on several daemons, and
Redis health. Absent ``[redis] url``: none of it runs.
"""

from __future__ import annotations

from supervisor.coordination._conversation import RedisRelay
from supervisor.coordination._coordinator import Coordinator
from supervisor.coordination._floor import RedisFloor
from supervisor.coordination._gate import GatedLlm
from supervisor.coordination._leases import LeaseTable
from supervisor.coordination._limits import UserLimits
from supervisor.coordination._redis import RedisStore
from supervisor.coordination._settings import RedisSettings

__all__ = (
    "Coordinator",
    "GatedLlm",
    "LeaseTable",
    "RedisFloor",
    "RedisRelay",
    "RedisSettings",
    "RedisStore",
    "UserLimits",
)
