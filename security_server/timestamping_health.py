"""Whether the message log may accept messages while time-stamping fails.

PROTOCOLS.md §12.2: "If timestamping keeps failing for longer than
acceptable-timestamp-failure-period ... the proxy stops accepting messages".
The :class:`~security_server.timestamper.Timestamper` records each run's
outcome in a :class:`TimestampingHealth`; the proxies call
:meth:`TimestampingHealth.check` before accepting a message, and the
diagnostics show its :class:`TimestampingState`. Re-exported by
:mod:`security_server.timestamper`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from jplink.errors import JPLinkError, TimestampError

__all__ = [
    "TIMESTAMPER_FAILED",
    "PendingRecordsHealth",
    "TimestampingHealth",
    "TimestampingState",
]

_log = logging.getLogger(__name__)

#: X-Road's ``X_MLOG_TIMESTAMPER_FAILED`` ("timestamper_failed"): the fault
#: leaf code when exchanges are refused because time-stamping keeps failing.
TIMESTAMPER_FAILED = "timestamper_failed"


@dataclass(frozen=True, slots=True)
class TimestampingState:
    """A snapshot of :class:`TimestampingHealth` (for diagnostics)."""

    failing_since: dt.datetime | None
    last_error: str | None
    oldest_pending_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_tsa_url: str | None


class TimestampingHealth:
    """Whether the log may accept messages, after the time-stamper's last runs.

    Args:
        failure_period_seconds: ``acceptable_timestamp_failure_period_seconds``
            (0 disables the check).
    """

    def __init__(self, failure_period_seconds: int) -> None:
        self.period = dt.timedelta(seconds=failure_period_seconds)
        self._failing_since: dt.datetime | None = None
        self._last_error: str | None = None
        self._oldest_pending: dt.datetime | None = None
        self._last_success: dt.datetime | None = None
        self._last_url: str | None = None

    def succeeded(self, now: dt.datetime, url: str | None) -> None:
        """Record a successful run (or one that had nothing to stamp)."""
        self._failing_since = self._last_error = self._oldest_pending = None
        self._last_success = now
        if url is not None:
            self._last_url = url

    def failed(
        self, now: dt.datetime, error: str, oldest_pending: dt.datetime | None
    ) -> None:
        """Record a failed run and the oldest record still without a stamp."""
        if self._failing_since is None:
            self._failing_since = now
        self._last_error = error
        self._oldest_pending = oldest_pending

    def state(self) -> TimestampingState:
        """The current state as a frozen snapshot."""
        return TimestampingState(
            self._failing_since,
            self._last_error,
            self._oldest_pending,
            self._last_success,
            self._last_url,
        )

    def check(self, now: dt.datetime) -> None:
        """Refuse a new message while time-stamping has failed for too long.

        Raises:
            TimestampError: code ``timestamper_failed`` when time-stamping
                is failing and the oldest record without a time-stamp is
                older than the acceptable failure period.
        """
        oldest = self._oldest_pending
        if not self.period or self._failing_since is None or oldest is None:
            return
        if now - oldest > self.period:
            raise TimestampError(
                "Cannot time-stamp messages: time-stamping has failed since "
                f"{self._failing_since.isoformat()} and the oldest record "
                f"without a time-stamp is from {oldest.isoformat()}",
                code=TIMESTAMPER_FAILED,
                detail={"last_error": self._last_error},
            )


class PendingRecordsHealth:
    """Time-stamping health as a worker process sees it: from the database.

    Worker processes (``[exchange] workers``) have no time-stamper; the runs
    of the ``serve`` process are not in their memory. PROTOCOLS.md §12.2
    refuses messages when time-stamping has failed for longer than the
    period *and* the oldest record without a time-stamp is older than it; a
    working time-stamper stamps every interval and never leaves a record
    unstamped that long, so here the age of the oldest unstamped record
    alone decides. :meth:`run` reads it every ``refresh_seconds``.

    Args:
        failure_period_seconds: as for :class:`TimestampingHealth`.
        oldest_pending: returns when the oldest unstamped record was logged.
        refresh_seconds: how often :meth:`run` reads it.
    """

    def __init__(
        self,
        failure_period_seconds: int,
        oldest_pending: Callable[[], Awaitable[dt.datetime | None]],
        *,
        refresh_seconds: float = 5.0,
    ) -> None:
        self.period = dt.timedelta(seconds=failure_period_seconds)
        self._read = oldest_pending
        self._refresh = refresh_seconds
        self._oldest: dt.datetime | None = None

    async def refresh(self) -> None:
        """Read the oldest unstamped record's time now."""
        self._oldest = await self._read()

    async def run(self) -> None:
        """Refresh every period until cancelled (a failed read keeps the last)."""
        while True:
            try:
                await self.refresh()
            except JPLinkError as exc:
                _log.warning("cannot read the message log's backlog: %s", exc.message)
            await asyncio.sleep(self._refresh)

    def check(self, now: dt.datetime) -> None:
        """Refuse a new message once the oldest unstamped record is too old.

        Raises:
            TimestampError: code ``timestamper_failed``.
        """
        oldest = self._oldest
        if self.period and oldest is not None and now - oldest > self.period:
            raise TimestampError(
                "Cannot time-stamp messages: the oldest record without a "
                f"time-stamp is from {oldest.isoformat()}",
                code=TIMESTAMPER_FAILED,
            )
