"""The time-stamper of ``jplink ss serve``: a background task.

Every interval (``[message_log] timestamping_interval_seconds``, else the
global configuration's ``timeStampingIntervalSeconds``) the
:class:`~security_server.timestamper.Timestamper` stamps the waiting
records; then the retention housekeeping deletes the archived records past
``keep_records_for_days``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp

from jplink.clients.tsa import AiohttpTsaClient
from jplink.errors import GlobalConfError
from jplink.storage import Database
from jplink.tasks import cancel_and_wait

from .config import SecurityServerConfig
from .exchange_ports import SavedConfProvider
from .retention import delete_expired_records
from .timestamper import Timestamper
from .timestamping_health import TimestampingHealth

__all__ = ["DEFAULT_INTERVAL_SECONDS", "running_timestamper"]

_log = logging.getLogger(__name__)

#: Interval when neither ss.toml nor the global configuration gives one.
DEFAULT_INTERVAL_SECONDS = 60.0


def _interval_of(config: SecurityServerConfig, conf: SavedConfProvider) -> float:
    """``[message_log] timestamping_interval_seconds``, else the global one."""
    override = config.message_log.timestamping_interval_seconds
    if override is not None:
        return float(override)
    try:
        private = conf.loaded().private
    except GlobalConfError:
        return DEFAULT_INTERVAL_SECONDS
    if private is None:
        return DEFAULT_INTERVAL_SECONDS
    return float(max(1, private.time_stamping_interval_seconds))


@contextlib.asynccontextmanager
async def running_timestamper(
    config: SecurityServerConfig,
    db: Database,
    conf: SavedConfProvider,
    session: aiohttp.ClientSession,
    *,
    clock: Callable[[], dt.datetime],
) -> AsyncIterator[Timestamper]:
    """The time-stamper of ``jplink ss serve``, running in the background.

    Every interval it time-stamps the waiting records and then deletes the
    archived records past ``keep_records_for_days`` (at most once per
    ``retention_interval_seconds``).

    Args:
        config: the instance configuration (``[message_log]``).
        db: the security server's database.
        conf: the saved global configuration (approved TSAs, interval).
        session: the aiohttp session for calling the TSAs.
        clock: the current time.

    Yields:
        The time-stamper (its ``health`` is what the proxies check).
    """
    settings = config.message_log
    stamper = Timestamper(
        db,
        client=AiohttpTsaClient(session),
        tsas=lambda now: conf.current(now=now).approved_tsas,
        batch_size=settings.timestamping_batch_size,
        health=TimestampingHealth(settings.acceptable_timestamp_failure_period_seconds),
        clock=clock,
    )
    last_purge: list[dt.datetime] = []

    async def housekeeping(now: dt.datetime) -> None:
        every = dt.timedelta(seconds=settings.retention_interval_seconds)
        if last_purge and now - last_purge[0] < every:
            return
        last_purge[:] = [now]
        result = await delete_expired_records(
            db, keep_days=settings.keep_records_for_days, now=now
        )
        if result.records:
            _log.info(
                "retention deleted %d archived records (%d time-stamps, "
                "%d signature documents no record names any more)",
                result.records,
                result.timestamps,
                result.signatures,
            )

    task = asyncio.create_task(
        stamper.run_periodically(
            interval=lambda: _interval_of(config, conf), housekeeping=housekeeping
        ),
        name="message-log-timestamper",
    )
    try:
        yield stamper
    finally:
        await cancel_and_wait(task)
