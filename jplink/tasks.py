"""Stopping background tasks, and long computations run in steps.

Every long-running service (refreshers, writers, publishers) ends its task
the same way on shutdown: cancel it, then wait until it has really ended, so
nothing it holds (a database connection, a file) is used after its owner
closed it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator
from typing import Any, TypeVar

__all__ = ["cancel_and_wait", "run_in_steps"]

_T = TypeVar("_T")


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


async def run_in_steps(steps: Generator[None, None, _T]) -> _T:
    """Drive ``steps`` to its end on the event loop, letting every other
    ready task run at each of its pauses (``yield``); return its value.

    For pure-Python work too long to block the loop with: in a thread it
    would hold the GIL turn about with the loop, and every C call of the
    loop's that gives the GIL up (a SQLite step, per row) would wait up to
    the interpreter's switch interval to get it back.
    """
    while True:
        try:
            next(steps)
        except StopIteration as done:
            value: _T = done.value
            return value
        await asyncio.sleep(0)
