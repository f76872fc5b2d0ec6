"""A worker's time-stamping health: the age of the oldest unstamped record."""

from __future__ import annotations

import datetime as dt

import pytest

from jplink.errors import JPLinkError, StorageError, TimestampError
from security_server.timestamping_health import TIMESTAMPER_FAILED, PendingRecordsHealth

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)


def _health(oldest: list[object], period: int = 3600) -> PendingRecordsHealth:
    async def read() -> dt.datetime | None:
        value = oldest[0]
        if isinstance(value, JPLinkError):
            raise value
        assert value is None or isinstance(value, dt.datetime)
        return value

    return PendingRecordsHealth(period, read, refresh_seconds=0.01)


async def test_accepts_without_backlog_and_with_a_young_one() -> None:
    oldest: list[object] = [None]
    health = _health(oldest)
    await health.refresh()
    health.check(NOW)
    oldest[0] = NOW - dt.timedelta(minutes=59)
    await health.refresh()
    health.check(NOW)


async def test_refuses_once_the_oldest_unstamped_record_is_too_old() -> None:
    oldest: list[object] = [NOW - dt.timedelta(hours=1, seconds=1)]
    health = _health(oldest)
    await health.refresh()
    with pytest.raises(TimestampError) as err:
        health.check(NOW)
    assert err.value.code == TIMESTAMPER_FAILED


async def test_a_zero_period_never_refuses() -> None:
    health = _health([NOW - dt.timedelta(days=30)], period=0)
    await health.refresh()
    health.check(NOW)


async def test_a_failed_read_keeps_the_last_known_backlog() -> None:
    oldest: list[object] = [NOW - dt.timedelta(hours=2)]
    health = _health(oldest)
    await health.refresh()
    oldest[0] = StorageError("database gone")
    with pytest.raises(StorageError):
        await health.refresh()
    with pytest.raises(TimestampError):
        health.check(NOW)
