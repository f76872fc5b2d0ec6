"""SingleFlight: concurrent callers share one load, its result or its error."""

from __future__ import annotations

import asyncio

import pytest

from security_server.single_flight import SingleFlight


async def test_concurrent_callers_share_one_load() -> None:
    flight: SingleFlight[int] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def load() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    waiters = [asyncio.create_task(flight.run("k", load)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiters) == [42] * 10
    assert calls == 1


async def test_a_later_call_loads_again() -> None:
    flight: SingleFlight[int] = SingleFlight()
    values = iter([1, 2])

    async def load() -> int:
        return next(values)

    assert await flight.run("k", load) == 1
    assert await flight.run("k", load) == 2


async def test_keys_load_separately() -> None:
    flight: SingleFlight[str] = SingleFlight()

    async def load_for(key: str) -> str:
        await asyncio.sleep(0)
        return key

    got = await asyncio.gather(
        flight.run("a", lambda: load_for("a")), flight.run("b", lambda: load_for("b"))
    )
    assert got == ["a", "b"]


async def test_the_error_reaches_every_waiter_and_is_not_kept() -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def failing() -> int:
        await gate.wait()
        raise OSError("database gone")

    waiters = [asyncio.create_task(flight.run("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)

    async def works() -> int:
        return 7

    assert await flight.run("k", works) == 7


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load() -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def load() -> int:
        await gate.wait()
        return 5

    first = asyncio.create_task(flight.run("k", load))
    second = asyncio.create_task(flight.run("k", load))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    gate.set()
    assert await second == 5
