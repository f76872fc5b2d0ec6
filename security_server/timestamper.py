"""Batch time-stamping of the message log (PROTOCOLS.md §12.2).

Every ``timeStampingIntervalSeconds`` the :class:`Timestamper` takes the
records without a time-stamp, oldest first (at most
``timestamping_batch_size``), and asks the approved TSAs, in configuration
order with failover, for ONE token over the data of
:mod:`security_server.timestamp_batch` (a ts hash chain over several records,
the ``ds:SignatureValue`` of a single one).

The response is verified against the approved TSA certificate from the global
configuration before anything is stored; the token and the records' links are
written in ONE transaction whose updates are conditional on
``timestamp_id IS NULL`` (:mod:`security_server._timestamper_engine`). A
crash at any point therefore loses no record (it stays in the queue) and
never gives a record two time-stamps (a batch that finds a record already
stamped is rolled back whole). On a SQLite file the links go in
transactions of a hundred-odd records instead, the event loop serving the
exchanges between them (:mod:`security_server._timestamper_sqlite`): the
same guarantees, except that what a crash or conflict interrupts stays
linked up to the last chunk committed.

Each run's outcome goes to a
:class:`~security_server.timestamping_health.TimestampingHealth`, which the
proxies check before accepting a message. The names of both modules are
re-exported here. ``jplink ss serve`` runs the time-stamper in the
background (:mod:`security_server.timestamper_task`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import Table, func, select

from jplink.clients.tsa import TsaClient
from jplink.errors import JPLinkError, StorageError, TimestampError
from jplink.globalconf import ApprovedTSA
from jplink.security.tsp import (
    HashAlgorithm,
    TimestampVerified,
    build_timestamp_request,
    verify_timestamp_response,
)
from jplink.storage import Database
from jplink.tasks import run_in_steps

from ._sqlite_writes import sqlite_file
from ._timestamper_engine import EngineStampStore
from ._timestamper_sqlite import SqliteStampStore, StampRow
from .audit import aware
from .models import MessageLogRecord, MessageSignature
from .timestamp_batch import (
    TS_DATA_REF_URI,
    TS_HASH_CHAIN_URI,
    StampedBatch,
    hash_chain_data,
    signature_value_of,
)
from .timestamping_health import (
    TIMESTAMPER_FAILED,
    TimestampingHealth,
    TimestampingState,
)

__all__ = [
    "TIMESTAMPER_FAILED",
    "TS_DATA_REF_URI",
    "TS_HASH_CHAIN_URI",
    "StampedBatch",
    "Timestamper",
    "TimestampingHealth",
    "TimestampingState",
    "oldest_pending",
    "signature_value_of",
]

_log = logging.getLogger(__name__)

_LOG: Table = MessageLogRecord.__table__  # type: ignore[assignment]


class Timestamper:
    """Time-stamps the message log in batches.

    Args:
        db: the security server's database.
        client: the TSA transport.
        tsas: the approved TSAs in force at a time (global configuration).
        batch_size: most records per time-stamp.
        health: where failures are recorded.
        clock: the current time (aware).
    """

    def __init__(
        self,
        db: Database,
        *,
        client: TsaClient,
        tsas: Callable[[dt.datetime], Sequence[ApprovedTSA]],
        batch_size: int,
        health: TimestampingHealth,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._db = db
        self._client = client
        self._tsas = tsas
        self._batch = batch_size
        self.health = health
        self._clock = clock
        self._lock = asyncio.Lock()
        path = sqlite_file(db)
        # Both stores read the waiting records and store a token with its
        # links (pending/store); SQLite's does it on the loop in chunks.
        self._stamps: SqliteStampStore | EngineStampStore = (
            EngineStampStore(db)
            if path is None
            else SqliteStampStore(path, db.engine.dialect)
        )

    async def _pending(self) -> list[tuple[int, str]]:
        return await self._stamps.pending(self._batch)

    async def _single_data(self, record_id: int) -> bytes:
        async with self._db.transaction() as session:
            xml = await session.scalar(
                select(MessageSignature.signature_xml)
                .join(_LOG, _LOG.c.signature_id == MessageSignature.id)
                .where(_LOG.c.id == record_id)
            )
        if xml is None:
            raise StorageError(f"Message-log record {record_id} disappeared")
        return signature_value_of(xml)

    def _approved(self, now: dt.datetime) -> Sequence[ApprovedTSA]:
        tsas = self._tsas(now)
        if not tsas:
            raise TimestampError(
                "No time-stamping authority is approved in the global configuration",
                code=TIMESTAMPER_FAILED,
            )
        return tsas

    async def _ask(
        self, data: bytes, now: dt.datetime, tsas: Sequence[ApprovedTSA]
    ) -> tuple[TimestampVerified, str]:
        """Ask each approved TSA in order; the first verified token wins."""
        # X-Road: "no nonce, no certReq, no policy" -- we ask for the TSA
        # certificate, which X-Road adds into the stored token afterwards.
        request = build_timestamp_request(data, hash_algorithm=HashAlgorithm.SHA512)
        errors = []
        for tsa in tsas:
            try:
                body = await self._client.fetch(tsa.url, request.der)
                # "The signer cert must be an approvedTSA/cert" (§12.2).
                token = verify_timestamp_response(
                    body, request=request, trusted_tsa_certs=(tsa.cert,), now=now
                )
            except JPLinkError as exc:
                _log.warning("TSA %s failed: %s: %s", tsa.url, exc.code, exc.message)
                errors.append(f"{tsa.url}: {exc.code}: {exc.message}")
                continue
            return token, tsa.url
        raise TimestampError(
            "Every approved TSA failed: " + "; ".join(errors),
            code=TIMESTAMPER_FAILED,
            detail={"errors": errors},
        )

    async def stamp_batch(
        self, *, log_level: int = logging.INFO
    ) -> StampedBatch | None:
        """Time-stamp the oldest records without a time-stamp (one batch).

        Args:
            log_level: of the line saying what was stamped and how long it
                took (DEBUG when every exchange stamps its own records).

        Returns:
            What was stored, or None when no record waits.

        Raises:
            TimestampError: no TSA approved, or every TSA failed or answered
                with a token that does not verify.
            StorageError: the database failed, or another process stamped
                some of the records first (nothing of this batch is stored;
                on SQLite, the chunks linked before it are).
            MalformedMessage: a single record's signature has no value.
        """
        started = time.perf_counter()
        pending = await self._pending()
        if not pending:
            return None
        now = self._clock()
        # Before the hash chains: without a TSA they would be built for
        # nothing, over a backlog that only grows.
        tsas = self._approved(now)
        chains: Sequence[bytes | None]
        if len(pending) == 1:
            data, result, chains = await self._single_data(pending[0][0]), None, [None]
        else:
            # In steps on the loop: ten thousand records take over 100 ms.
            hashes = [h for _, h in pending]
            data, chains = await run_in_steps(hash_chain_data(hashes))
            result = data
        asked = time.perf_counter()
        token, url = await self._ask(data, now, tsas)
        ids = tuple(i for i, _ in pending)
        stored = time.perf_counter()
        timestamp_id = await self._store(token, url, result, ids, chains, now)
        done = time.perf_counter()
        # One line per batch (one per interval, unless a backlog is worked
        # off): how much the time-stamper does and where its time goes.
        _log.log(
            log_level,
            "time-stamped %d records (token %d, %s) in %.0f ms: records and hash "
            "chains %.0f ms, TSA %.0f ms, links %.0f ms",
            len(ids), timestamp_id, url, 1000 * (done - started),
            1000 * (asked - started), 1000 * (stored - asked), 1000 * (done - stored),
        )  # fmt: skip
        return StampedBatch(timestamp_id, ids, token, url, result)

    async def _store(
        self,
        token: TimestampVerified,
        url: str,
        result: bytes | None,
        ids: Sequence[int],
        chains: Sequence[bytes | None],
        now: dt.datetime,
    ) -> int:
        row = StampRow(
            token_der=token.token_der,
            hash_chain_result=None if result is None else result.decode(),
            gen_time=token.gen_time,
            tsa_url=url,
            created_at=now,
        )
        return await self._stamps.store(row, ids, chains)

    async def _oldest_pending(self) -> dt.datetime | None:
        return await oldest_pending(self._db)

    async def run_once(
        self, *, raise_errors: bool = False, log_level: int = logging.INFO
    ) -> int:
        """Stamp batches until fewer than a full batch waited; record health.

        Args:
            raise_errors: re-raise a failure (time-stamp-immediately mode)
                instead of only recording it.
            log_level: of each batch's line (see :meth:`stamp_batch`).

        Returns:
            How many records were time-stamped.

        Raises:
            TimestampError, StorageError, MalformedMessage: only with
                ``raise_errors``.
        """
        total = 0
        async with self._lock:
            while True:
                try:
                    stamped = await self.stamp_batch(log_level=log_level)
                except JPLinkError as exc:
                    try:
                        oldest = await self._oldest_pending()
                    except StorageError:
                        oldest = None
                    self.health.failed(
                        self._clock(), f"{exc.code}: {exc.message}", oldest
                    )
                    _log.error("message-log time-stamping failed: %s", exc.message)
                    if raise_errors:
                        raise TimestampError(
                            f"Cannot time-stamp the message log: {exc.message}",
                            code=TIMESTAMPER_FAILED,
                        ) from exc
                    return total
                self.health.succeeded(
                    self._clock(), None if stamped is None else stamped.tsa_url
                )
                if stamped is None:
                    return total
                total += len(stamped.record_ids)
                if len(stamped.record_ids) < self._batch:
                    return total

    async def run_periodically(
        self,
        *,
        interval: Callable[[], float],
        housekeeping: Callable[[dt.datetime], Awaitable[None]] | None = None,
    ) -> None:
        """Run :meth:`run_once` (then ``housekeeping``) every ``interval()`` s.

        Never returns; cancel the task to stop it. Failures are recorded in
        :attr:`health` and logged, never raised.
        """
        while True:
            await self.run_once()
            if housekeeping is not None:
                try:
                    await housekeeping(self._clock())
                except JPLinkError as exc:
                    _log.error("message-log housekeeping failed: %s", exc.message)
            await asyncio.sleep(interval())


async def oldest_pending(db: Database) -> dt.datetime | None:
    """When the oldest record without a time-stamp was logged (None: none)."""
    async with db.transaction() as session:
        first = await session.scalar(
            select(func.min(_LOG.c.id)).where(_LOG.c.timestamp_id.is_(None))
        )
        if first is None:
            return None
        at = await session.scalar(select(_LOG.c.logged_at).where(_LOG.c.id == first))
    return None if at is None else aware(at)
