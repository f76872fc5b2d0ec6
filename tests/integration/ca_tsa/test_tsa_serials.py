"""SerialAllocator against fake and real (SQLite/PostgreSQL) counters."""

from __future__ import annotations

import asyncio

import pytest

from ca_tsa.models import MIGRATIONS
from ca_tsa.repositories import reserve_tsa_serials
from ca_tsa.tsa import SerialAllocator
from jplink.errors import StorageError
from jplink.storage import create_database, upgrade_database


class FakeCounter:
    """An in-memory reserve(): hands out blocks, can be told to fail."""

    def __init__(self) -> None:
        self.next = 1
        self.calls = 0
        self.fail_next = 0

    async def reserve(self, count: int) -> range:
        self.calls += 1
        await asyncio.sleep(0)  # let other coroutines run meanwhile
        if self.fail_next:
            self.fail_next -= 1
            raise StorageError("database down")
        block = range(self.next, self.next + count)
        self.next += count
        return block


@pytest.mark.parametrize("block_size", [1, 2, 7, 100])
async def test_concurrent_callers_get_unique_serials(block_size):
    counter = FakeCounter()
    serials = SerialAllocator(counter.reserve, block_size=block_size)
    got = await asyncio.gather(*(serials.next() for _ in range(250)))
    await serials.aclose()
    assert len(set(got)) == 250
    assert all(s < counter.next for s in got)


async def test_blocks_not_a_write_per_token():
    counter = FakeCounter()
    serials = SerialAllocator(counter.reserve, block_size=100)
    for _ in range(1000):
        await serials.next()
    await serials.aclose()
    assert counter.calls <= 11


async def test_a_failed_prefetch_is_retried_and_errors_surface():
    counter = FakeCounter()
    serials = SerialAllocator(counter.reserve, block_size=4)
    first = [await serials.next() for _ in range(3)]  # prefetch starts at 2 left
    counter.fail_next = 1  # too late for the prefetch already running
    more = [await serials.next() for _ in range(5)]
    assert len(set(first + more)) == 8
    counter.fail_next = 2  # the next prefetch and its retry both fail
    with pytest.raises(StorageError):
        for _ in range(10):
            await serials.next()
    await serials.aclose()


async def test_two_allocators_on_one_database_never_collide(db_url, tmp_path):
    db = create_database(db_url)
    try:
        await upgrade_database(db, MIGRATIONS)

        async def reserve(count: int) -> range:
            return await reserve_tsa_serials(db, count)

        a = SerialAllocator(reserve, block_size=5)
        b = SerialAllocator(reserve, block_size=5)
        got = await asyncio.gather(*(x.next() for _ in range(30) for x in (a, b)))
        await a.aclose()
        await b.aclose()
        # A "restart": a new allocator continues after everything reserved.
        c = SerialAllocator(reserve, block_size=5)
        later = [await c.next() for _ in range(3)]
        await c.aclose()
    finally:
        await db.dispose()
    assert len(set(got)) == 60
    assert min(later) > max(got)
