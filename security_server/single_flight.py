"""One load at a time per key: concurrent callers share the result.

The proxies keep short-lived snapshots (server configuration, clients'
connection settings, checked own certificates). When one expires under load,
every request in flight would otherwise notice at once and each read the
database again: 64 concurrent requests made 64 identical reloads, all
waiting on the same connection pool. :class:`SingleFlight` lets the first
caller load and every caller that arrives meanwhile await that same load;
its result or its error goes to all of them. Nothing stale is served: a
caller either gets a value loaded within its cache period or waits for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

_T = TypeVar("_T")


class SingleFlight(Generic[_T]):
    """Shares in-flight loads per key.

    The load runs as its own task: a caller that is cancelled (its client
    went away) stops waiting without cancelling the load the others share.
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Task[_T]] = {}

    async def run(self, key: Hashable, load: Callable[[], Awaitable[_T]]) -> _T:
        """Await the load running for ``key``, or start ``load`` for it.

        Raises:
            Exception: whatever the shared load raised (to every waiter).
        """
        task = self._running.get(key)
        if task is None:

            async def call() -> _T:
                return await load()

            task = asyncio.ensure_future(call())
            self._running[key] = task
            task.add_done_callback(lambda _t: self._forget(key, _t))
        return await asyncio.shield(task)

    def _forget(self, key: Hashable, task: asyncio.Task[_T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning
