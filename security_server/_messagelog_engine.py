"""The message log's inserts through the SQLAlchemy engine (PostgreSQL).

Used by :class:`security_server.messagelog.MessageLogWriter` when the
database is not a SQLite file (that one has its own fast path,
:mod:`._messagelog_sqlite`); both sinks have the same ``insert``/``close``.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Table, insert

from jplink.storage import Database

from .messagelog_models import MessageLogRecord, MessageSignature

__all__ = ["EngineSink"]

_TABLE: Table = MessageLogRecord.__table__  # type: ignore[assignment]
_SIGNATURES: Table = MessageSignature.__table__  # type: ignore[assignment]


class EngineSink:
    """Message-log inserts on an engine connection, one transaction each.

    Core INSERTs with ``executemany``: no ORM session, no unit of work;
    SQLAlchemy sends the rows in batches ("insertmanyvalues").

    Args:
        db: the security server's database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(
        self,
        rows: list[dict[str, object]],
        known: Mapping[str, int],
        documents: list[tuple[str, str]],
    ) -> dict[str, int]:
        """Store ``documents``, then ``rows``, in one transaction: all or none.

        Args:
            rows: records (``LogEntry.row()``); their ``signature_id`` is set
                from their ``signature_hash`` here.
            known: ids of documents already stored, by signature_hash.
            documents: (signature_hash, document) to store.

        Returns:
            The id of every document the rows name, by signature_hash.

        Raises:
            SQLAlchemyError: the database failed; nothing was stored.
        """
        ids = dict(known)
        async with self._db.engine.begin() as conn:
            if documents:
                stored = await conn.execute(
                    insert(_SIGNATURES).returning(
                        _SIGNATURES.c.id,
                        _SIGNATURES.c.signature_hash,
                        sort_by_parameter_order=True,
                    ),
                    [{"signature_hash": h, "signature_xml": x} for h, x in documents],
                )
                ids.update({str(h): int(i) for i, h in stored})
            await conn.execute(
                insert(_TABLE),
                [
                    {**row, "signature_id": ids[str(row["signature_hash"])]}
                    for row in rows
                ],
            )
        return ids

    async def close(self) -> None:
        """Nothing to release: the engine belongs to the server."""
