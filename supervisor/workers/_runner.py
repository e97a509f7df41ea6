"""``WorkerRoomRunner``: a room actor in a worker process, as the registry sees it.

It has the in-process actor's shape (``run(*, task_status)`` reporting a ``RoomHandle``), so
the registry's supervision (start, stop, restart with backoff, give up) does not change: the
actor simply runs elsewhere and the two sides exchange messages.

Both ways of stopping an actor keep their meaning across the pipe: ``request_stop`` on the
handle becomes ``StopRoom`` (finish through the inbox), and cancelling the runner (a lost
lease, the drain deadline, a start timeout) becomes ``CancelRoom``: the actor is cancelled at
once, not asked to finish its reply, and the runner returns once the worker reports the room
ended (within the actor's own ``close_timeout_s``, as a cancelled in-process actor takes).
"""

from __future__ import annotations

import anyio
from anyio.abc import TaskStatus

from actors import ActorCrashed, ActorStartError
from actors.room import RoomHandle, RoomSpec
from actors.room._messages import RoomMessage, StopRequested
from supervisor.workers._pool import Worker, WorkerPool
from supervisor.workers._protocol import CancelRoom, StopRoom

__all__ = ("WorkerRoomRunner",)

_START_MARGIN_S = 5.0


class WorkerRoomRunner:
    def __init__(self, pool: WorkerPool, spec: RoomSpec) -> None:
        self._pool = pool
        self.spec = spec

    async def run(self, *, task_status: TaskStatus[RoomHandle] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start the room on the least-loaded worker and follow it until it ends.

        Raises:
            ActorStartError: no worker has room for it, or it failed to join.
            ActorCrashed: it failed while running (or its worker died).
        """
        room = self.spec.room
        worker = self._pool.place(room)
        if worker is None:
            raise ActorStartError(
                "no room worker is ready with a free slot; see [supervisor] "
                "workers and rooms_per_worker"
            )
        waiter = await self._pool.start_room(worker, self.spec)
        try:
            timeout = self._pool.config.agent.connect_timeout_s + _START_MARGIN_S
            with anyio.fail_after(timeout):
                async with anyio.create_task_group() as tg:

                    async def first_of(event: anyio.Event) -> None:
                        await event.wait()
                        tg.cancel_scope.cancel()

                    tg.start_soon(first_of, waiter.started)
                    tg.start_soon(first_of, waiter.ended)
            if not waiter.started.is_set():
                raise ActorStartError(f"room actor could not start in its worker ({waiter.error})")
            send, inbox = anyio.create_memory_object_stream[RoomMessage](4)
            stop = anyio.Event()
            with send, inbox:
                task_status.started(RoomHandle(room, waiter.conversation_id, send, stop))
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._forward_stops, worker, inbox, stop)
                    await waiter.ended.wait()
                    tg.cancel_scope.cancel()
            if waiter.error is not None:
                raise ActorCrashed(f"room actor failed in its worker ({waiter.error})")
        finally:
            if not waiter.ended.is_set():
                # Cancelled (or timed out): the worker cancels the actor too, at once, where a
                # StopRoom would let it finish its reply first; after a lost lease another
                # daemon's agent may be joining. Waiting for the end keeps "the runner
                # returned" meaning "the actor has left", as for an in-process actor.
                with anyio.move_on_after(self._pool.config.agent.close_timeout_s, shield=True):
                    await _send_quietly(worker, CancelRoom(room, "cancelled by the supervisor"))
                    await waiter.ended.wait()

    async def _forward_stops(
        self, worker: Worker, inbox: anyio.abc.ObjectReceiveStream[RoomMessage], stop: anyio.Event
    ) -> None:
        async with anyio.create_task_group() as tg:

            async def on_event() -> None:
                await stop.wait()
                await _send_quietly(worker, StopRoom(self.spec.room, "stop requested"))

            tg.start_soon(on_event)
            async for message in inbox:
                if isinstance(message, StopRequested):
                    await _send_quietly(worker, StopRoom(self.spec.room, message.reason))


async def _send_quietly(worker: Worker, message: StopRoom | CancelRoom) -> None:
    try:
        await worker.send(message)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass  # the worker is gone; its rooms end with it
