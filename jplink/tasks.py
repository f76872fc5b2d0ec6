"""Stopping background tasks.

Every long-running service (refreshers, writers, publishers) ends its task
the same way on shutdown: cancel it, then wait until it has really ended, so
nothing it holds (a database connection, a file) is used after its owner
closed it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel ``task`` (None: nothing to do) and wait until it has ended.

    The task's own ``CancelledError`` is not raised; any other exception it
    ends with is.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
