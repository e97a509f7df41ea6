"""``RoomRunner``: one room on a room host, as the registry supervises it.

The one way the supervisor runs a room, whether its host is a worker process or runs in the
supervisor's own process (``workers = 0``): the runner places the room on a host, waits for
``RoomStarted``, reports itself as the running room, and follows it until ``RoomEnded``.

Both ways of stopping a room keep their meaning across the link: ``request_stop`` sends one
``StopRoom`` (finish the current reply, save, leave), and cancelling the runner (a lost lease,
the drain deadline, a start timeout) sends ``CancelRoom``: the actor is cancelled at once,
and the runner returns once the host reports the room ended (within the actor's own
``close_timeout_s``), so "the runner returned" means "the agent has left", in both modes.
"""

from __future__ import annotations

import anyio
from anyio.abc import TaskStatus

from actors import ActorCrashed, ActorStartError
from actors.room import RoomSpec
from supervisor.host import CancelRoom, RoomEndKind, StopRoom
from supervisor.workers._hosts import Worker
from supervisor.workers._pool import WorkerPool

__all__ = ("RoomRunner",)

_START_MARGIN_S = 5.0
"""Beyond the actor's own start bound: the host's work around it (placing, messages)."""


class RoomRunner:
    """Runs ``spec``'s room on the pool's least-loaded host.

    Args:
        pool: the room hosts.
        spec: which room, where, and the agent's token.
    """

    def __init__(self, pool: WorkerPool, spec: RoomSpec) -> None:
        self._pool = pool
        self.spec = spec
        self.conversation_id = ""
        self.failure = ""
        """Why it failed, as its host said (the cause's type, or how it ended), once it has."""
        self._stop_reason = ""
        self._stop = anyio.Event()

    def request_stop(self, reason: str) -> None:
        """Ask the room to finish (its current reply first); non-blocking, idempotent."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    async def run(self, *, task_status: TaskStatus[RoomRunner] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start the room, report ``started(self)`` once it has joined, and follow it.

        Raises:
            ActorStartError: no host has room for it, or it failed to join.
            ActorCrashed: it failed while running (or its host died).
        """
        room = self.spec.room
        worker = self._pool.place(room)
        if worker is None:
            raise ActorStartError(
                "no room host is ready with a free slot; see [supervisor] "
                "workers and rooms_per_worker"
            )
        waiter = await self._pool.start_room(worker, self.spec)
        try:
            timeout = self._pool.config.agent.start_bound_s + _START_MARGIN_S
            with anyio.fail_after(timeout):
                await waiter.settled.wait()
            if waiter.conversation_id is None:
                why = "" if waiter.ended is None else waiter.ended.detail or waiter.ended.kind
                self.failure = why
                raise ActorStartError(f"room actor could not start on its host ({why})")
            self.conversation_id = waiter.conversation_id
            task_status.started(self)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._forward_stop, worker, name=f"{self.spec.key.task_name()}:stop")
                await waiter.done.wait()
                tg.cancel_scope.cancel("room ended")
            ended = waiter.ended
            if ended is not None and ended.kind in (RoomEndKind.CRASHED, RoomEndKind.HOST_GONE):
                self.failure = ended.detail or ended.kind
                raise ActorCrashed(f"room actor failed on its host ({ended.detail or ended.kind})")
        finally:
            if not waiter.done.is_set():
                # Cancelled (or timed out): the host cancels the actor too, at once, where a
                # StopRoom would let it finish its reply first; after a lost lease another
                # daemon's agent may be joining. Waiting for the end keeps "the runner
                # returned" meaning "the actor has left".
                with anyio.move_on_after(self._pool.config.agent.close_timeout_s, shield=True):
                    await worker.send_quietly(
                        CancelRoom(room, "cancelled by the supervisor", self.spec.agent)
                    )
                    await waiter.done.wait()

    async def _forward_stop(self, worker: Worker) -> None:
        await self._stop.wait()
        await worker.send_quietly(StopRoom(self.spec.room, self._stop_reason, self.spec.agent))
