"""The time-stamper's database work through the engine (PostgreSQL).

The counterpart of :mod:`._timestamper_sqlite` for any database but a
SQLite file: the waiting records are read, and the token stored with every
record's link, through SQLAlchemy. The token and all the links are ONE
transaction whose updates are conditional on ``timestamp_id IS NULL``: a
crash at any point loses no record (it stays in the queue), and a batch
that finds a record already stamped by another process is rolled back
whole, so no record ever has two time-stamps.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, bindparam, func, insert, select, update

from jplink.errors import StorageError
from jplink.storage import Database

from ._timestamper_sqlite import StampRow
from .messagelog_models import MessageLogRecord, MessageTimestamp

__all__ = ["EngineStampStore"]

_LOG: Table = MessageLogRecord.__table__  # type: ignore[assignment]
_TS: Table = MessageTimestamp.__table__  # type: ignore[assignment]


class EngineStampStore:
    """Reads waiting records and stores tokens through ``db``'s engine."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def pending(self, limit: int) -> list[tuple[int, str]]:
        """(id, signature_hash) of the oldest records without a time-stamp.

        Raises:
            StorageError: the database failed.
        """
        async with self._db.transaction() as session:
            rows = await session.execute(
                select(_LOG.c.id, _LOG.c.signature_hash)
                .where(_LOG.c.timestamp_id.is_(None))
                .order_by(_LOG.c.id)
                .limit(limit)
            )
            return [(int(r[0]), str(r[1])) for r in rows]

    async def store(
        self, row: StampRow, ids: Sequence[int], chains: Sequence[bytes | None]
    ) -> int:
        """Store ``row`` and link the records ``ids`` to it (with their chains).

        Returns:
            The new ``message_timestamp`` id.

        Raises:
            StorageError: the database failed, or some record had been
                time-stamped meanwhile (code ``TimestampConflict``; nothing
                of the batch is stored).
        """
        async with self._db.transaction() as session:
            timestamp_id = await session.scalar(
                insert(_TS)
                .values(
                    token_der=row.token_der,
                    hash_chain_result=row.hash_chain_result,
                    gen_time=row.gen_time,
                    tsa_url=row.tsa_url,
                    created_at=row.created_at,
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
        if timestamp_id is None:  # pragma: no cover - RETURNING gives the id
            raise StorageError("No id for the stored time-stamp")
        return int(timestamp_id)
