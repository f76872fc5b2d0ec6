"""Unique time-stamp serial numbers without a database write per token.

Serials are reserved from the persisted counter in blocks
(:func:`ca_tsa.repositories.reserve_tsa_serials`) and handed out from memory.
Every reservation is committed before any of its numbers is used, so a serial
is never issued twice, across worker processes and restarts alike; a restart
only skips what was left of the current block ("The serialNumber ... MUST be
unique for each TimeStampToken issued by a given TSA", RFC 3161 §2.4.2).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

__all__ = ["SerialAllocator"]


class SerialAllocator:
    """Hands out serial numbers from blocks reserved through ``reserve``.

    When a block is half used the next one is reserved in the background, so
    requests seldom wait for the database.

    Args:
        reserve: ``async (count) -> range`` that atomically reserves serials.
        block_size: how many serials one reservation takes.
    """

    def __init__(
        self,
        reserve: Callable[[int], Awaitable[range]],
        *,
        block_size: int = 1000,
    ) -> None:
        if block_size < 1:
            raise ValueError("block_size must be at least 1")
        self._reserve = reserve
        self._block_size = block_size
        self._current: Iterator[int] = iter(())
        self._left = 0
        self._next: asyncio.Task[range] | None = None
        self._lock = asyncio.Lock()

    async def next(self) -> int:
        """The next unused serial number.

        Raises:
            StorageError: the reservation failed (from ``reserve``).
        """
        if self._left == 0:
            async with self._lock:
                if self._left == 0:
                    await self._refill()
        self._left -= 1
        serial = next(self._current)
        if self._left == self._block_size // 2 and self._next is None:
            self._next = asyncio.ensure_future(self._reserve(self._block_size))
        return serial

    async def _refill(self) -> None:
        task, self._next = self._next, None
        try:
            block = await task if task is not None else None
        except Exception:  # a failed prefetch: try once more, synchronously
            block = None
        if block is None:
            block = await self._reserve(self._block_size)
        self._current = iter(block)
        self._left = len(block)

    async def aclose(self) -> None:
        """Wait for a pending prefetch so no task outlives the event loop."""
        if self._next is not None:
            # A failed prefetch no longer matters: nothing is handed out now.
            with contextlib.suppress(Exception):
                await self._next
            self._next = None
