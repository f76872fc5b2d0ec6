"""Long computations run in steps on the event loop (jplink.tasks)."""

from __future__ import annotations

import asyncio
from collections.abc import Generator

import pytest

from jplink.tasks import run_in_steps


def _work(log: list[str], steps: int) -> Generator[None, None, int]:
    for i in range(steps):
        log.append(f"step{i}")
        yield
    log.append("last")
    return 42


async def test_other_tasks_run_at_every_pause() -> None:
    log: list[str] = []

    async def other() -> None:
        for _ in range(3):
            log.append("other")
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)  # the other task is running
    log.clear()
    assert await run_in_steps(_work(log, 3)) == 42
    await task
    # The other task had two turns left: one at each of the first pauses.
    assert log == ["step0", "other", "step1", "other", "step2", "last"]


async def test_an_error_in_a_step_is_raised() -> None:
    def failing() -> Generator[None, None, int]:
        yield
        raise ValueError("step two failed")

    with pytest.raises(ValueError, match="step two failed"):
        await run_in_steps(failing())
