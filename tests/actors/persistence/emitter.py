"""A process that emits turns into the real PersistenceActor until it is killed.

    python -m tests.actors.persistence.emitter DATA_DIR BACKEND_URL CONVERSATIONS

Event ``i`` has id ``EV_<i:08d>`` and belongs to conversation ``conv-<i % CONVERSATIONS>``.
Every ``_ACK_EVERY`` events it awaits ``flush()`` and prints ``acked N``: events ``0 .. N-1``
are acknowledged (committed to the outbox), so the test that kills it knows which events must
reach the backend.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from actors import OutboxFullError
from actors.persistence import EmbeddedStore, PersistenceActor, PersistenceSettings
from tests.actors.persistence.conftest import turn

# Emit like busy rooms (a few thousand events a second), in bursts that leave the loop to the
# acknowledgements; pacing only, never a synchronisation.
_BURST = 5
_PAUSE_S = 0.001
_ACK_EVERY = 100


async def main(data_dir: Path, backend_url: str, conversations: int) -> None:
    settings = PersistenceSettings(
        data_dir=data_dir,
        backend_url=backend_url,
        flush_interval_ms=5,
        batch_max=200,
        retry_initial_s=0.01,
        retry_max_s=0.1,
    )
    store = EmbeddedStore(settings.store_path)
    actor = PersistenceActor(settings, store)
    emitted = acked = 0
    async with anyio.create_task_group() as tg:
        await tg.start(actor.run)
        while True:
            for _ in range(_BURST):
                try:
                    actor.emit(turn(f"conv-{emitted % conversations}", emitted))
                except OutboxFullError:
                    break
                emitted += 1
            if emitted - acked >= _ACK_EVERY:
                await actor.flush()
                acked = emitted
                sys.stdout.write(f"acked {acked}\n")
                sys.stdout.flush()
            await anyio.sleep(_PAUSE_S)


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), backend="asyncio")
