"""The message log's SQLite fast path: every batch committed on the event
loop, one transaction each.

Used by :class:`security_server.messagelog.MessageLogWriter` when the
database is a SQLite file; PostgreSQL goes through the engine.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, Insert, Table, insert

from ._sqlite_writes import (
    checkpoint,
    connect_sqlite,
    retry_while_busy,
    write_transaction,
)
from .messagelog_models import MessageLogRecord, MessageSignature

__all__ = [
    "CHECKPOINT_EVERY",
    "CHECKPOINT_ROWS",
    "CompiledInsert",
    "SqliteSink",
    "compile_insert",
]

_TABLE: Table = MessageLogRecord.__table__  # type: ignore[assignment]

_log = logging.getLogger(__name__)

#: Commits between two passive WAL checkpoints (in the thread); at a few
#: pages per commit, about SQLite's own automatic interval (1000 pages).
CHECKPOINT_EVERY = 200
#: Records between two checkpoints, whatever the commits: a full record is
#: 4-8 KB, so about the same 1000 pages. A checkpoint copies what was
#: written since the last one, and the writer waits for it: counting large
#: batches as one commit each let it grow to 50-100 MB (100 ms) at 64 clients.
CHECKPOINT_ROWS = 512

_Params = tuple[object, ...]


class SqliteSink:
    """Message-log inserts into a SQLite file, committed on the event loop.

    Through aiosqlite every DBAPI call of a transaction (cursor, executemany,
    commit, the reset on return to the pool) is its own round trip to its
    thread and back to the event loop, via SQLAlchemy's greenlet bridge.
    Here the INSERT is compiled once by SQLAlchemy for the engine's dialect,
    the rows are turned into parameter tuples with the columns' own bind
    processors, and BEGIN, ``executemany`` and COMMIT run on a plain
    ``sqlite3`` connection to the same file. WAL mode (set on the file by the
    main engine) lets this connection and the main engine's share the file.

    The transaction runs on the event loop's thread, not in a worker thread.
    ``sqlite3`` gives the GIL up around every step of a statement, one per
    row of an ``executemany``, and takes it back before the next row; while
    the event loop runs Python (a busy server's normal state) a thread gets
    it back only when the loop blocks or after the interpreter's switch
    interval (5 ms). A batch of 30 records in a thread took tens of
    milliseconds under load, and every exchange waited for it: the two
    servers of the exchange benchmark idled 25-30 % of the time at 64
    clients. On the loop the same commit is a millisecond or two of work
    nothing else could have used (the loop's other work needs the same GIL).

    The connection never waits inside SQLite (no busy timeout): when another
    connection holds the write lock (the time-stamper, a worker process, an
    admin change), the writer task sleeps and tries again
    (:func:`._sqlite_writes.retry_while_busy`: every millisecond, up to 10 s);
    meanwhile the loop serves the exchanges. It has no automatic WAL checkpoint
    either (a checkpoint copies and syncs pages): after every
    :data:`CHECKPOINT_EVERY` commits or :data:`CHECKPOINT_ROWS` records,
    whichever comes first, a passive checkpoint runs in a thread (one statement:
    the GIL is free while it copies), and the writer awaits it, so no commit
    races the checkpoint and the next one can start the WAL over (else it would
    only grow).
    """

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        self._dialect = dialect
        self._conn: sqlite3.Connection | None = None  # only on the event loop
        self._checkpointer: sqlite3.Connection | None = None  # only in the thread
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="messagelog")
        self._compiled: dict[tuple[str, tuple[str, ...]], CompiledInsert] = {}
        self._inserts: dict[str, Insert] = {
            "log": insert(_TABLE),
            "signature": insert(MessageSignature),
        }
        self._since_checkpoint = 0
        self._rows_since_checkpoint = 0
        #: Batches that found the write lock held and waited for it.
        self.lock_waits = 0
        #: Passive WAL checkpoints run (failed ones included).
        self.checkpoints = 0

    def _statement(self, which: str, keys: tuple[str, ...]) -> CompiledInsert:
        found = self._compiled.get((which, keys))
        if found is None:
            found = compile_insert(self._inserts[which], self._dialect, keys)
            self._compiled[(which, keys)] = found
        return found

    def _commit(self, work: _Work) -> dict[str, int]:
        if self._conn is None:
            self._conn = connect_sqlite(self._path, waits=False)
        with write_transaction(self._conn):
            return _write(self._conn, work)

    def _waited(self) -> None:
        self.lock_waits += 1

    def _checkpoint_sync(self) -> None:
        if self._checkpointer is None:
            self._checkpointer = connect_sqlite(self._path, waits=True)
        checkpoint(self._checkpointer)

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
            sqlite3.Error: the database refused, or the write lock stayed
                held for :data:`._sqlite_writes.LOCK_WAIT_SECONDS` (nothing
                was stored).
        """
        sig = self._statement("signature", ("signature_hash", "signature_xml"))
        work = _Work(sig.sql, documents, known, [])
        # Rows from LogEntry.row() all have the same columns: one statement.
        by_keys: dict[tuple[str, ...], list[dict[str, object]]] = {}
        for row in rows:
            by_keys.setdefault(tuple(row), []).append(row)
        for keys, group in by_keys.items():
            stmt = self._statement("log", keys)
            work.records.append(
                (
                    stmt.sql,
                    stmt.order.index("signature_hash"),
                    stmt.order.index("signature_id"),
                    [stmt.parameters(r) for r in group],
                )
            )
        ids = await retry_while_busy(self._commit, work, on_wait=self._waited)
        self._since_checkpoint += 1
        self._rows_since_checkpoint += len(rows)
        if (
            self._since_checkpoint >= CHECKPOINT_EVERY
            or self._rows_since_checkpoint >= CHECKPOINT_ROWS
        ):
            self._since_checkpoint = self._rows_since_checkpoint = 0
            self.checkpoints += 1
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._thread, self._checkpoint_sync)
        return ids

    def _close_sync(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None

    async def close(self) -> None:
        """Close the connections (each on its own thread) and stop the thread."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close_sync)
        self._thread.shutdown(wait=True)


@dataclass(frozen=True, slots=True)
class _Work:
    """One transaction: signature documents to store, then the records."""

    signature_sql: str
    documents: list[tuple[str, str]]
    known: Mapping[str, int]
    #: (sql, where signature_hash is, where signature_id goes, parameters).
    records: list[tuple[str, int, int, list[_Params]]]


def _write(conn: sqlite3.Connection, work: _Work) -> dict[str, int]:
    """Run ``work`` in the transaction open on ``conn``."""
    ids = dict(work.known)
    for signature_hash, document in work.documents:
        cursor = conn.execute(work.signature_sql, (signature_hash, document))
        if cursor.lastrowid is None:  # pragma: no cover - a rowid table
            raise sqlite3.DatabaseError("no id for a stored signature")
        ids[signature_hash] = cursor.lastrowid
    for sql, hash_at, id_at, params in work.records:
        conn.executemany(
            sql,
            [(*p[:id_at], ids[str(p[hash_at])], *p[id_at + 1 :]) for p in params],
        )
    return ids


def compile_insert(
    stmt: Insert, dialect: Dialect, keys: tuple[str, ...]
) -> CompiledInsert:
    """``stmt`` compiled by SQLAlchemy for ``dialect`` with the columns ``keys``.

    Raises:
        ValueError: ``keys`` leaves out a column that has a default.
    """
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    order = tuple(compiled.positiontup or ())
    if set(order) != set(keys):  # a column default we did not give
        raise ValueError(f"rows must give every column of {order}")
    processors = tuple(
        stmt.table.c[k].type.dialect_impl(dialect).bind_processor(dialect)
        for k in order
    )
    return CompiledInsert(compiled.string, order, processors)


@dataclass(frozen=True, slots=True)
class CompiledInsert:
    """The INSERT for one set of columns, and how to bind a row to it."""

    sql: str
    order: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def parameters(self, row: Mapping[str, object]) -> _Params:
        return tuple(
            row[k] if p is None else p(row[k])
            for k, p in zip(self.order, self.processors, strict=True)
        )
