"""The message-log hook: both proxies record every signed request and response.

PROTOCOLS.md §12.1: "Both SSs log every request and every response"; the
record keeps the query id, the message (per the log mode), the signature XML,
the hash chain and its result for a batch signature, ``signaturehash`` =
base64(SHA-512(UTF-8 bytes of the signature XML)), the client and the
direction. We also keep the service, the signer certificate's hash and the
OCSP responses embedded in the signature, which the evidence export needs.

Throughput: :class:`MessageLogWriter` owns one writer task. Callers hand over
their records and wait; the task takes every record that is waiting, inserts
them in ONE transaction and then wakes each caller, so an exchange is
acknowledged only after its records are committed, while the database sees
a few large commits instead of one per message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Table, insert
from sqlalchemy.exc import SQLAlchemyError

from jplink.errors import JPLinkError, StorageError
from jplink.identifiers import ClientId, ServiceId
from jplink.protocol.transport import TransportMessage
from jplink.security.signature import VerifiedSignature
from jplink.storage import Database

from .config import MessageLogMode
from .models import MessageLogRecord
from .signer import SignedMessage
from .states import LogDirection, LogSide

__all__ = [
    "DEFAULT_MAX_RECORDS_PER_COMMIT",
    "LogEntry",
    "MessageLogWriter",
    "entry_for",
    "log_entry",
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
            "archived": False,
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

    Returns:
        The record.

    Raises:
        MalformedMessage: never for our own bytes; a signature or chain that is
            not UTF-8 raises ``UnicodeDecodeError`` from the codec (a bug).
    """
    return LogEntry(
        query_id=query_id,
        client=str(client),
        service=str(service),
        direction=direction,
        side=side,
        logged_at=now,
        x_request_id=x_request_id,
        message=soap if mode is MessageLogMode.FULL else None,
        signature_xml=signature_xml.decode("utf-8"),
        # PROTOCOLS.md §12.1: signaturehash = base64(SHA-512(UTF-8 bytes of
        # the signature XML)).
        signature_hash=base64.b64encode(hashlib.sha512(signature_xml).digest()).decode(
            "ascii"
        ),
        hash_chain=_text(hash_chain),
        hash_chain_result=_text(hash_chain_result),
        signer_cert_sha256=_cert_sha256(signer_cert_der),
        ocsp_responses=_ocsp_json(tuple(ocsp_ders)),
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
        signer_cert_der=verified.signer_certificate.public_bytes(Encoding.DER),
        ocsp_ders=verified.ocsp_responses,
        **fields,  # type: ignore[arg-type]
    )


@dataclass(slots=True)
class _Batch:
    rows: list[dict[str, object]]
    future: asyncio.Future[None]


class MessageLogWriter:
    """Writes message-log records in batched transactions.

    Args:
        db: the security server's database.
        mode: the message-log mode; ``none`` stores nothing.
        max_records: upper bound of records per transaction.
    """

    def __init__(
        self,
        db: Database,
        mode: MessageLogMode,
        *,
        max_records: int = DEFAULT_MAX_RECORDS_PER_COMMIT,
    ) -> None:
        self._db = db
        self._mode = mode
        self._max = max_records
        self._queue: asyncio.Queue[_Batch] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.commits = 0

    @property
    def mode(self) -> MessageLogMode:
        """The message-log mode in force."""
        return self._mode

    async def write(self, entries: Sequence[LogEntry]) -> None:
        """Store ``entries`` (in one transaction with others that wait).

        Returns only after the commit.

        Raises:
            StorageError: code ``LoggingFailed``; nothing of the batch was stored.
        """
        if self._mode is MessageLogMode.NONE or not entries:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Batch([e.row() for e in entries], future))
        await future

    async def _run(self) -> None:
        while True:
            batches = [await self._queue.get()]
            size = len(batches[0].rows)
            while size < self._max and not self._queue.empty():
                batch = self._queue.get_nowait()
                batches.append(batch)
                size += len(batch.rows)
            error: JPLinkError | None = None
            try:
                # A Core INSERT of the table (executemany): the ORM's bulk
                # path adds nothing here and costs more per row.
                async with self._db.transaction() as session:
                    await session.execute(
                        insert(_TABLE),
                        [row for batch in batches for row in batch.rows],
                    )
                self.commits += 1
            except (SQLAlchemyError, JPLinkError, OSError) as exc:
                _log.error("message log write failed: %s", exc)
                error = StorageError(
                    f"Cannot write the message log: {exc}", code="LoggingFailed"
                )
            for batch in batches:
                if batch.future.done():
                    continue
                if error is None:
                    batch.future.set_result(None)
                else:
                    batch.future.set_exception(error)

    async def close(self) -> None:
        """Finish what is queued, then stop the writer task."""
        while self._task is not None and not self._queue.empty():
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
