"""Batch time-stamping of the message log (PROTOCOLS.md §12.2).

Every ``timeStampingIntervalSeconds`` the :class:`Timestamper` takes the
records without a time-stamp, oldest first (at most
``timestamping_batch_size``), and asks the approved TSAs, in configuration
order with failover, for ONE token:

- several records: the data is the bytes of the ts ``HashChainResult`` over
  their ``signaturehash`` values ("Build a hash chain whose inputs are each
  record's signaturehash ... The timestamped data = the bytes of the ts hash
  chain result XML"); each record keeps its own ``HashChain``;
- one record: "The timestamped data = the raw (decoded) bytes of
  ``ds:SignatureValue``" (X-Road's ``SingleTimestampRequest``); the evidence
  export embeds that token into the signature.

The response is verified against the approved TSA certificate from the global
configuration before anything is stored; the token and the records' links are
written in ONE transaction whose updates are conditional on
``timestamp_id IS NULL``. A crash at any point therefore loses no record (it
stays in the queue) and never gives a record two time-stamps (a batch that
finds a record already stamped is rolled back whole).

:class:`TimestampingHealth` remembers failures: "If timestamping keeps failing
for longer than acceptable-timestamp-failure-period ... the proxy stops
accepting messages" (PROTOCOLS.md §12.2). The proxies call
:meth:`TimestampingHealth.check` before accepting a message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp
from sqlalchemy import Table, bindparam, func, insert, select, update

from jplink.clients.tsa import AiohttpTsaClient, TsaClient
from jplink.errors import (
    GlobalConfError,
    JPLinkError,
    MalformedMessage,
    StorageError,
    TimestampError,
)
from jplink.globalconf import ApprovedTSA
from jplink.ns import NS_DS
from jplink.security.c14n import DigestAlgorithm, b64decode_text
from jplink.security.hashchain import build_hash_chains
from jplink.security.tsp import (
    HashAlgorithm,
    TimestampVerified,
    build_timestamp_request,
    verify_timestamp_response,
)
from jplink.storage import Database
from jplink.xml import parse_xml

from .audit import aware
from .config import SecurityServerConfig
from .exchange_ports import SavedConfProvider
from .models import MessageLogRecord, MessageTimestamp
from .retention import delete_expired_records

__all__ = [
    "TIMESTAMPER_FAILED",
    "TS_DATA_REF_URI",
    "TS_HASH_CHAIN_URI",
    "StampedBatch",
    "Timestamper",
    "TimestampingHealth",
    "TimestampingState",
    "running_timestamper",
    "signature_value_of",
]

_log = logging.getLogger(__name__)

#: X-Road's ``X_MLOG_TIMESTAMPER_FAILED`` ("timestamper_failed"): the fault
#: leaf code when exchanges are refused because time-stamping keeps failing.
TIMESTAMPER_FAILED = "timestamper_failed"
#: PROTOCOLS.md §12.2: "The chain file is /ts-hashchain.xml; DataRef URI
#: /META-INF/signatures.xml".
TS_HASH_CHAIN_URI = "/ts-hashchain.xml"
TS_DATA_REF_URI = "/META-INF/signatures.xml"
#: Interval when neither ss.toml nor the global configuration gives one.
DEFAULT_INTERVAL_SECONDS = 60.0

_LOG: Table = MessageLogRecord.__table__  # type: ignore[assignment]
_TS: Table = MessageTimestamp.__table__  # type: ignore[assignment]


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


@dataclass(frozen=True, slots=True)
class StampedBatch:
    """What one batch stored.

    Attributes:
        timestamp_id: the new ``message_timestamp`` row.
        record_ids: the records it covers, oldest first.
        token: the verified token.
        tsa_url: the TSA that answered.
        hash_chain_result: the ts chain result (None for a single record).
    """

    timestamp_id: int
    record_ids: tuple[int, ...]
    token: TimestampVerified
    tsa_url: str
    hash_chain_result: bytes | None


def signature_value_of(signature_xml: str) -> bytes:
    """The raw bytes of ``ds:SignatureValue`` (a single time-stamp's data).

    Raises:
        MalformedMessage: no SignatureValue, or invalid base64.
        XmlSecurityError: the document is not acceptable XML.
    """
    root = parse_xml(signature_xml.encode("utf-8"))
    value = next(root.iter(f"{{{NS_DS}}}SignatureValue"), None)
    if value is None:
        raise MalformedMessage("The logged signature has no ds:SignatureValue")
    return b64decode_text(value.text, "SignatureValue")


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

    async def _pending(self) -> list[tuple[int, str]]:
        async with self._db.transaction() as session:
            rows = await session.execute(
                select(_LOG.c.id, _LOG.c.signature_hash)
                .where(_LOG.c.timestamp_id.is_(None))
                .order_by(_LOG.c.id)
                .limit(self._batch)
            )
            return [(int(r[0]), str(r[1])) for r in rows]

    async def _single_data(self, record_id: int) -> bytes:
        async with self._db.transaction() as session:
            xml = await session.scalar(
                select(_LOG.c.signature_xml).where(_LOG.c.id == record_id)
            )
        if xml is None:
            raise StorageError(f"Message-log record {record_id} disappeared")
        return signature_value_of(xml)

    async def _ask(
        self, data: bytes, now: dt.datetime
    ) -> tuple[TimestampVerified, str]:
        """Ask each approved TSA in order; the first verified token wins."""
        tsas = self._tsas(now)
        if not tsas:
            raise TimestampError(
                "No time-stamping authority is approved in the global configuration",
                code=TIMESTAMPER_FAILED,
            )
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

    async def stamp_batch(self) -> StampedBatch | None:
        """Time-stamp the oldest records without a time-stamp (one batch).

        Returns:
            What was stored, or None when no record waits.

        Raises:
            TimestampError: no TSA approved, or every TSA failed or answered
                with a token that does not verify.
            StorageError: the database failed, or another process stamped
                some of the records first (nothing of this batch is stored).
            MalformedMessage: a single record's signature has no value.
        """
        pending = await self._pending()
        if not pending:
            return None
        now = self._clock()
        chains: Sequence[bytes | None]
        if len(pending) == 1:
            data, result, chains = await self._single_data(pending[0][0]), None, [None]
        else:
            batch = build_hash_chains(
                [[(TS_DATA_REF_URI, base64.b64decode(h))] for _, h in pending],
                digest_algorithm=DigestAlgorithm.SHA512,
                hash_chain_uri=TS_HASH_CHAIN_URI,
            )
            data, result, chains = batch.result, batch.result, batch.chains
        token, url = await self._ask(data, now)
        ids = tuple(i for i, _ in pending)
        timestamp_id = await self._store(token, url, result, ids, chains, now)
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
        async with self._db.transaction() as session:
            timestamp_id = await session.scalar(
                insert(_TS)
                .values(
                    token_der=token.token_der,
                    hash_chain_result=None if result is None else result.decode(),
                    gen_time=token.gen_time,
                    tsa_url=url,
                    created_at=now,
                )
                .returning(_TS.c.id)
            )
            await session.execute(
                update(_LOG)
                .where(_LOG.c.id == bindparam("rid"), _LOG.c.timestamp_id.is_(None))
                .values(
                    timestamp_id=bindparam("tid"), timestamp_hash_chain=bindparam("c")
                ),
                [
                    {
                        "rid": i,
                        "tid": timestamp_id,
                        "c": None if c is None else c.decode(),
                    }
                    for i, c in zip(ids, chains, strict=True)
                ],
            )
            stamped = await session.scalar(
                select(func.count()).where(_LOG.c.timestamp_id == timestamp_id)
            )
            if stamped != len(ids):
                # Another time-stamper got some of them first: roll back so no
                # record ends up with two time-stamps.
                raise StorageError(
                    f"{len(ids) - int(stamped or 0)} records were time-stamped "
                    "concurrently; batch dropped",
                    code="TimestampConflict",
                )
        assert timestamp_id is not None
        return int(timestamp_id)

    async def _oldest_pending(self) -> dt.datetime | None:
        async with self._db.transaction() as session:
            first = await session.scalar(
                select(func.min(_LOG.c.id)).where(_LOG.c.timestamp_id.is_(None))
            )
            if first is None:
                return None
            at = await session.scalar(
                select(_LOG.c.logged_at).where(_LOG.c.id == first)
            )
        return None if at is None else aware(at)

    async def run_once(self, *, raise_errors: bool = False) -> int:
        """Stamp batches until fewer than a full batch waited; record health.

        Args:
            raise_errors: re-raise a failure (time-stamp-immediately mode)
                instead of only recording it.

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
                    stamped = await self.stamp_batch()
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
            _log.info("retention deleted %d archived records", result.records)

    task = asyncio.create_task(
        stamper.run_periodically(
            interval=lambda: _interval_of(config, conf), housekeeping=housekeeping
        ),
        name="message-log-timestamper",
    )
    try:
        yield stamper
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
