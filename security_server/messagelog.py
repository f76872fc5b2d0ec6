"""The message-log hook: both proxies record every signed request and response.

PROTOCOLS.md §12.1: "Both SSs log every request and every response"; the
record keeps the query id, the message (per the log mode), the signature XML,
the hash chain and its result for a batch signature, ``signaturehash`` =
base64(SHA-512(UTF-8 bytes of the signature XML)), the client and the
direction. We also keep the service, the signer certificate's hash and the
OCSP responses embedded in the signature, which the evidence export needs.

Modes: the proxies build each entry with the writer's capture :attr:`mode`
(the widest of ``[message_log] mode`` and the ``[[message_log.subsystems]]``
overrides); :meth:`MessageLogWriter.write` then applies the mode of the
record's local client (the consumer on the client proxy, the provider on the
server proxy): ``full`` keeps the message, ``metadata`` drops its bytes,
``none`` stores no record. With ``encryption_keystore`` the kept message is
encrypted with AES-GCM (:mod:`.logcrypt`) and the key id stored on the record.

Time-stamping (:mod:`.timestamper`): the writer refuses nothing itself, but
:meth:`MessageLogWriter.check_healthy` is what both proxies call before they
accept a message, and with ``timestamp_immediately`` a write returns only
after its records are time-stamped.

Throughput: :class:`MessageLogWriter` owns one writer task. Callers hand over
their records and wait; the task takes every record that is waiting, inserts
them in ONE transaction and then wakes each caller, so an exchange is
acknowledged only after its records are committed, while the database sees
a few large commits instead of one per message. The insert is a Core
``INSERT`` (no ORM session); on a SQLite file the whole transaction is one
call in the writer's own thread (:mod:`._messagelog_sqlite`), on PostgreSQL
one ``executemany`` on an engine connection.

Outcome: the ``fault``/``fault_code`` columns are set when the record is
written. The proxies pass them (they parsed the message and only log
non-fault messages); for entries that do not say, the writer classifies the
message in clear before a mode or encryption hides it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import hashlib
import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Table, insert
from sqlalchemy.exc import SQLAlchemyError

from jplink.errors import ConfigurationError, JPLinkError, StorageError
from jplink.identifiers import ClientId, ServiceId
from jplink.protocol.transport import TransportMessage
from jplink.security.certs import certificate_der
from jplink.security.signature import VerifiedSignature
from jplink.storage import Database
from jplink.tasks import cancel_and_wait

from ._messagelog_sqlite import SqliteSink, sqlite_file
from .config import MessageLogMode, MessageLogSettings
from .logcrypt import LogKeystore, load_keystore, record_aad
from .messagelog_query import Outcome, message_outcome
from .models import MessageLogRecord
from .signer import SignedMessage
from .states import LogDirection, LogSide
from .timestamper import Timestamper
from .timestamping_health import PendingRecordsHealth

__all__ = [
    "DEFAULT_MAX_RECORDS_PER_COMMIT",
    "LogEntry",
    "MessageLogWriter",
    "entry_for",
    "log_entry",
    "open_message_log_writer",
    "received_entry",
]

_log = logging.getLogger(__name__)

_TABLE: Table = MessageLogRecord.__table__  # type: ignore[assignment]

#: Upper bound of records written in one transaction.
DEFAULT_MAX_RECORDS_PER_COMMIT = 1000


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One message-log record before it is stored (column values)."""

    query_id: str
    client: str
    service: str
    direction: LogDirection
    side: LogSide
    logged_at: dt.datetime
    x_request_id: str | None
    message: bytes | None
    signature_xml: str
    signature_hash: str
    hash_chain: str | None
    hash_chain_result: str | None
    signer_cert_sha256: str
    ocsp_responses: str
    #: The local client whose mode applies (not a column).
    local_client: str = ""
    #: The logcrypt key that encrypted ``message``; None: in clear.
    message_key_id: str | None = None
    #: Whether the message is a SOAP fault; None: not known to the caller
    #: (the writer then classifies a kept message itself).
    fault: bool | None = None
    #: The fault's ``faultcode`` when ``fault`` is true.
    fault_code: str | None = None

    def row(self) -> dict[str, object]:
        """The column values for an INSERT."""
        return {
            "query_id": self.query_id,
            "client": self.client,
            "service": self.service,
            "direction": self.direction.value,
            "side": self.side.value,
            "logged_at": self.logged_at,
            "x_request_id": self.x_request_id,
            "message": self.message,
            "signature_xml": self.signature_xml,
            "signature_hash": self.signature_hash,
            "hash_chain": self.hash_chain,
            "hash_chain_result": self.hash_chain_result,
            "signer_cert_sha256": self.signer_cert_sha256,
            "ocsp_responses": self.ocsp_responses,
            "message_key_id": self.message_key_id,
            "archived": False,
            "fault": self.fault,
            "fault_code": self.fault_code,
        }


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8")


# A sender's certificate and OCSP responses are the same for many messages in
# a row: their column values are computed once (bounded caches).
@functools.lru_cache(maxsize=256)
def _cert_sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


@functools.lru_cache(maxsize=256)
def _ocsp_json(ders: tuple[bytes, ...]) -> str:
    return json.dumps([base64.b64encode(d).decode("ascii") for d in ders])


@functools.lru_cache(maxsize=256)
def _signature_fields(signature_xml: bytes) -> tuple[str, str]:
    # The messages of a batch share one signature document: it is decoded
    # and hashed once, not once per record.
    # PROTOCOLS.md §12.1: signaturehash = base64(SHA-512(UTF-8 bytes of the
    # signature XML)).
    digest = hashlib.sha512(signature_xml).digest()
    return signature_xml.decode("utf-8"), base64.b64encode(digest).decode("ascii")


def log_entry(
    *,
    query_id: str,
    client: ClientId,
    service: ServiceId,
    direction: LogDirection,
    side: LogSide,
    soap: bytes,
    signature_xml: bytes,
    hash_chain: bytes | None,
    hash_chain_result: bytes | None,
    signer_cert_der: bytes,
    ocsp_ders: Sequence[bytes],
    mode: MessageLogMode,
    x_request_id: str | None,
    now: dt.datetime,
    fault: bool | None = None,
    fault_code: str | None = None,
) -> LogEntry:
    """Build the record of one signed message.

    Args:
        query_id: the SOAP ``id``.
        client, service: the message's header identifiers.
        direction, side: request or response; which proxy logs it.
        soap: the SOAP bytes exactly as signed.
        signature_xml, hash_chain, hash_chain_result: as sent or received.
        signer_cert_der: the signing certificate.
        ocsp_ders: the OCSP responses embedded in the signature.
        mode: ``full`` keeps ``soap``; ``metadata`` keeps no message.
        x_request_id: the ``x-road-request-id`` shared by request and response.
        now: when it is logged.
        fault, fault_code: the outcome, when the caller knows it (the proxies
            do: they parsed the message). None: the writer classifies a
            kept message with :func:`.messagelog_query.message_outcome`.

    Returns:
        The record.

    Raises:
        MalformedMessage: never for our own bytes; a signature or chain that is
            not UTF-8 raises ``UnicodeDecodeError`` from the codec (a bug).
    """
    signature_text, signature_hash = _signature_fields(bytes(signature_xml))
    return LogEntry(
        query_id=query_id,
        client=str(client),
        service=str(service),
        direction=direction,
        side=side,
        logged_at=now,
        x_request_id=x_request_id,
        message=soap if mode is MessageLogMode.FULL else None,
        signature_xml=signature_text,
        signature_hash=signature_hash,
        hash_chain=_text(hash_chain),
        hash_chain_result=_text(hash_chain_result),
        signer_cert_sha256=_cert_sha256(signer_cert_der),
        ocsp_responses=_ocsp_json(tuple(ocsp_ders)),
        local_client=str(client if side is LogSide.CLIENT_PROXY else service.client),
        fault=fault,
        fault_code=fault_code if fault else None,
    )


def entry_for(
    signed: SignedMessage,
    **fields: object,
) -> LogEntry:
    """Shorthand of :func:`log_entry` for a message we signed ourselves."""
    return log_entry(
        signature_xml=signed.signature.signature_xml,
        hash_chain=signed.signature.hash_chain,
        hash_chain_result=signed.signature.hash_chain_result,
        signer_cert_der=signed.signer_cert_der,
        ocsp_ders=signed.ocsp_ders,
        **fields,  # type: ignore[arg-type]
    )


def received_entry(
    message: TransportMessage,
    verified: VerifiedSignature,
    **fields: object,
) -> LogEntry:
    """Shorthand of :func:`log_entry` for a message a peer signed and we verified."""
    return log_entry(
        soap=message.soap,
        signature_xml=message.signature,
        hash_chain=message.hash_chain,
        hash_chain_result=message.hash_chain_result,
        signer_cert_der=certificate_der(verified.signer_certificate),
        ocsp_ders=verified.ocsp_responses,
        **fields,  # type: ignore[arg-type]
    )


def _outcome(message: bytes) -> tuple[bool, str | None]:
    """``fault``/``fault_code`` of a message whose caller did not say.

    A Fault element spells ``Fault`` in the bytes of an ASCII-compatible
    encoding; UTF-16/32 put NUL bytes between ASCII characters. Anything
    else is parsed (:func:`.messagelog_query.message_outcome`).
    """
    if b"Fault" not in message and b"\x00" not in message:
        return False, None
    outcome, code = message_outcome(message)
    return outcome is Outcome.FAULT, code


@dataclass(slots=True)
class _Batch:
    rows: list[dict[str, object]]
    future: asyncio.Future[None]


#: Modes from the widest to the narrowest.
_WIDTH = (MessageLogMode.FULL, MessageLogMode.METADATA, MessageLogMode.NONE)


class MessageLogWriter:
    """Writes message-log records in batched transactions.

    Args:
        db: the security server's database.
        mode: the default message-log mode; ``none`` stores nothing.
        max_records: upper bound of records per transaction.
        overrides: local client (text form) -> its own mode.
        keystore: encrypt kept messages with its current key.
        timestamper: the time-stamper whose health :meth:`check_healthy`
            reports.
        stamp_immediately: after each commit, time-stamp the new records
            before :meth:`write` returns.
    """

    def __init__(
        self,
        db: Database,
        mode: MessageLogMode,
        *,
        max_records: int = DEFAULT_MAX_RECORDS_PER_COMMIT,
        overrides: Mapping[str, MessageLogMode] | None = None,
        keystore: LogKeystore | None = None,
        timestamper: Timestamper | None = None,
        stamp_immediately: bool = False,
        health: PendingRecordsHealth | None = None,
    ) -> None:
        if stamp_immediately and timestamper is None:
            raise ValueError("stamp_immediately needs a timestamper")
        self._db = db
        self._default = mode
        self._overrides = dict(overrides or {})
        self._mode = min((mode, *self._overrides.values()), key=_WIDTH.index)
        self._keystore = keystore
        self._timestamper = timestamper
        self._health = health
        self._immediately = stamp_immediately
        self._max = max_records
        self._queue: asyncio.Queue[_Batch] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        sqlite = sqlite_file(db)
        self._sqlite = None if sqlite is None else SqliteSink(sqlite, db.engine.dialect)
        self.commits = 0

    @property
    def mode(self) -> MessageLogMode:
        """The capture mode: the widest of the default and the overrides.

        The proxies build entries with it; :meth:`write` narrows each record
        to its own client's mode.
        """
        return self._mode

    def mode_for(self, local_client: str) -> MessageLogMode:
        """The mode that applies to records of ``local_client``."""
        return self._overrides.get(local_client, self._default)

    def check_healthy(self, now: dt.datetime) -> None:
        """Refuse new messages while time-stamping has failed for too long.

        Both proxies call this before accepting a message.

        Raises:
            TimestampError: code ``timestamper_failed`` (see
                :meth:`.timestamper.TimestampingHealth.check`).
        """
        if self._timestamper is not None:
            self._timestamper.health.check(now)
        elif self._health is not None:  # a worker process
            self._health.check(now)

    def _prepare(self, entry: LogEntry) -> dict[str, object] | None:
        mode = self.mode_for(entry.local_client)
        if mode is MessageLogMode.NONE:
            return None
        if entry.fault is None and entry.message is not None:
            # The caller did not say (the proxies always do): classify the
            # message in clear, before a mode or encryption hides it.
            fault, code = _outcome(entry.message)
            entry = replace(entry, fault=fault, fault_code=code)
        if mode is MessageLogMode.METADATA and entry.message is not None:
            entry = replace(entry, message=None)
        if self._keystore is not None and entry.message is not None:
            aad = record_aad(
                entry.query_id, entry.direction.value, entry.side.value, entry.client
            )
            entry = replace(
                entry,
                message=self._keystore.encrypt(entry.message, aad),
                message_key_id=self._keystore.current_id,
            )
        return entry.row()

    async def write(self, entries: Sequence[LogEntry]) -> None:
        """Store ``entries`` (in one transaction with others that wait).

        Returns only after the commit (and, with ``stamp_immediately``, after
        the records are time-stamped).

        Raises:
            StorageError: code ``LoggingFailed``; nothing of the batch was stored.
            TimestampError: code ``timestamper_failed``: stored, but the
                immediate time-stamp failed (the background run retries).
        """
        if self._mode is MessageLogMode.NONE or not entries:
            return
        rows = [row for row in map(self._prepare, entries) if row is not None]
        if not rows:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Batch(rows, future))
        await future
        if self._immediately and self._timestamper is not None:
            await self._timestamper.run_once(raise_errors=True)

    async def _run(self) -> None:
        while True:
            batches = [await self._queue.get()]
            self._busy = True
            size = len(batches[0].rows)
            while size < self._max and not self._queue.empty():
                batch = self._queue.get_nowait()
                batches.append(batch)
                size += len(batch.rows)
            error: JPLinkError | None = None
            try:
                await self._insert([row for batch in batches for row in batch.rows])
                self.commits += 1
            except (SQLAlchemyError, sqlite3.Error, JPLinkError, OSError) as exc:
                _log.error("message log write failed: %s", exc)
                error = StorageError(
                    f"Cannot write the message log: {exc}", code="LoggingFailed"
                )
            finally:
                self._busy = False
            for batch in batches:
                if batch.future.done():
                    continue
                if error is None:
                    batch.future.set_result(None)
                else:
                    batch.future.set_exception(error)

    async def _insert(self, rows: list[dict[str, object]]) -> None:
        """One transaction with one multi-row INSERT: all rows or none."""
        if self._sqlite is not None:
            await self._sqlite.insert(rows)
            return
        # A Core INSERT on a connection (executemany): no ORM session, no
        # unit of work; SQLAlchemy batches the rows ("insertmanyvalues").
        async with self._db.engine.begin() as conn:
            await conn.execute(insert(_TABLE), rows)

    async def close(self) -> None:
        """Finish what is queued, then stop the writer task."""
        while (
            self._task is not None
            and not self._task.done()
            and (self._busy or not self._queue.empty())
        ):
            await asyncio.sleep(0.01)
        await cancel_and_wait(self._task)
        if self._sqlite is not None:
            await self._sqlite.close()


def open_message_log_writer(
    db: Database,
    settings: MessageLogSettings,
    *,
    timestamper: Timestamper | None = None,
    health: PendingRecordsHealth | None = None,
) -> MessageLogWriter:
    """The writer for ``[message_log]``: modes, encryption, time-stamping.

    Args:
        db: the security server's database.
        settings: the ``[message_log]`` table.
        timestamper: the running time-stamper (needed for
            ``timestamp_immediately``; its health is checked per message).
        health: a worker process's view of time-stamping health (used
            when there is no time-stamper).

    Returns:
        The writer (call :meth:`MessageLogWriter.close` when done).

    Raises:
        ConfigurationError: the keystore is missing, readable by others or
            malformed; ``timestamp_immediately`` without a time-stamper.
    """
    if settings.timestamp_immediately and timestamper is None:
        raise ConfigurationError("timestamp_immediately needs the time-stamper")
    keystore = (
        None
        if settings.encryption_keystore is None
        else load_keystore(settings.encryption_keystore)
    )
    return MessageLogWriter(
        db,
        settings.log_mode,
        overrides={s.client: MessageLogMode(s.mode) for s in settings.subsystems},
        keystore=keystore,
        timestamper=timestamper,
        stamp_immediately=settings.timestamp_immediately,
        health=health,
    )
