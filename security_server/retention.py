"""Retention of the message log: delete archived records past their keep period.

``[message_log] keep_records_for_days`` (default 30, X-Road's
``keep-records-for``) applies ONLY to records whose ``archived`` flag is set
(the archiver sets it once a record is safely in an archive file): an
unarchived record is never deleted, however old, so a stalled archiver cannot
make evidence disappear. Time-stamp rows that no longer cover any record, and
signature documents that no record names any more, are deleted with the last
of their records.

Deletion runs in bounded chunks, each in its own transaction, so a large
backlog neither holds long locks nor needs one huge transaction; a crash
between chunks leaves a consistent log (each chunk is all or nothing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Table, delete, exists, select

from jplink.storage import Database

from .models import MessageLogRecord, MessageSignature, MessageTimestamp

__all__ = ["RetentionResult", "delete_expired_records"]

_LOG: Table = MessageLogRecord.__table__  # type: ignore[assignment]
_TS: Table = MessageTimestamp.__table__  # type: ignore[assignment]
_SIG: Table = MessageSignature.__table__  # type: ignore[assignment]

#: Records deleted per transaction.
DEFAULT_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one retention run deleted.

    Attributes:
        records: message-log records deleted.
        timestamps: time-stamp rows deleted (no record left to cover).
        signatures: signature documents deleted (no record left to name).
        cutoff: records logged before this were eligible.
    """

    records: int
    timestamps: int
    cutoff: dt.datetime
    signatures: int = 0


async def delete_expired_records(
    db: Database,
    *,
    keep_days: int,
    now: dt.datetime,
    chunk: int = DEFAULT_CHUNK,
) -> RetentionResult:
    """Delete archived records logged more than ``keep_days`` before ``now``.

    Args:
        db: the security server's database.
        keep_days: ``keep_records_for_days`` (at least 1).
        now: the reference time (aware).
        chunk: records per transaction.

    Returns:
        The counts deleted.

    Raises:
        ValueError: ``keep_days`` below 1, ``chunk`` below 1, naive ``now``.
        StorageError: the database failed (chunks already committed stay
            deleted; the rest is retried on the next run).
    """
    if keep_days < 1 or chunk < 1:
        raise ValueError("keep_days and chunk must be positive")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cutoff = now - dt.timedelta(days=keep_days)
    records = timestamps = signatures = 0
    while True:
        async with db.transaction() as session:
            ids = list(
                await session.scalars(
                    select(_LOG.c.id)
                    .where(_LOG.c.archived.is_(True), _LOG.c.logged_at < cutoff)
                    .order_by(_LOG.c.id)
                    .limit(chunk)
                )
            )
            if not ids:
                break
            stamp_ids = set(
                await session.scalars(
                    select(_LOG.c.timestamp_id)
                    .where(_LOG.c.id.in_(ids), _LOG.c.timestamp_id.is_not(None))
                    .distinct()
                )
            )
            documents = set(
                await session.scalars(
                    select(_LOG.c.signature_id).where(_LOG.c.id.in_(ids)).distinct()
                )
            )
            await session.execute(delete(_LOG).where(_LOG.c.id.in_(ids)))
            records += len(ids)
            if stamp_ids:
                orphan = ~exists().where(_LOG.c.timestamp_id == _TS.c.id)
                result = await session.execute(
                    delete(_TS).where(_TS.c.id.in_(stamp_ids), orphan)
                )
                timestamps += int(result.rowcount or 0)  # type: ignore[attr-defined]
            # A batch's records may span chunks: a document goes with the
            # last record naming it (found by ix_message_log_signature_id).
            unnamed = ~exists().where(_LOG.c.signature_id == _SIG.c.id)
            result = await session.execute(
                delete(_SIG).where(_SIG.c.id.in_(documents), unnamed)
            )
            signatures += int(result.rowcount or 0)  # type: ignore[attr-defined]
        if len(ids) < chunk:
            break
    return RetentionResult(records, timestamps, cutoff, signatures)
