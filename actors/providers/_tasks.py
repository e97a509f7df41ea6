"""A task group whose lone failure surfaces as itself, not wrapped in an ExceptionGroup.

A provider stream is a context manager that owns background tasks (a socket reader, a decoder).
When one of them fails, the caller should see the ``ProviderError`` it raised, exactly as if the
call had been made inline; anyio would wrap it (and even the body's own exceptions) in an
``ExceptionGroup``. Cancellation and multi-error groups pass through untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup

__all__ = ("task_group",)


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """``anyio.create_task_group()``, re-raising a single error unwrapped."""
    try:
        async with anyio.create_task_group() as tg:
            yield tg
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            error = group.exceptions[0]
            # Keep the error's own cause; drop the group as implicit context (it adds nothing).
            raise error from error.__cause__
        raise
