"""The message log's SQLite fast path: small batches committed on the event
loop, larger ones in one thread hop each.

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

from jplink.storage import Database

from .messagelog_models import MessageLogRecord, MessageSignature

__all__ = [
    "INLINE_CHECKPOINT_EVERY",
    "INLINE_MAX_ROWS",
    "CompiledInsert",
    "SqliteSink",
    "compile_insert",
    "connect_sqlite",
    "sqlite_file",
]

_TABLE: Table = MessageLogRecord.__table__  # type: ignore[assignment]

_log = logging.getLogger(__name__)

#: Largest batch committed on the event loop; larger ones go to the thread.
INLINE_MAX_ROWS = 8
#: Inline commits between two passive WAL checkpoints (in the thread); at a
#: few pages per commit, about SQLite's own automatic interval (1000 pages).
INLINE_CHECKPOINT_EVERY = 200

_Params = tuple[object, ...]


class SqliteSink:
    """Message-log inserts into a SQLite file: inline when small, else ONE thread hop.

    Through aiosqlite every DBAPI call of a transaction (cursor, executemany,
    commit, the reset on return to the pool) is its own round trip to its
    thread and back to the event loop, via SQLAlchemy's greenlet bridge.
    Here the INSERT is compiled once by SQLAlchemy for the engine's dialect,
    the rows are turned into parameter tuples with the columns' own bind
    processors on the event loop, and one function in a worker thread of our
    own runs BEGIN, ``executemany`` and COMMIT on a plain ``sqlite3``
    connection to the same file. The worker holds the GIL little: sqlite
    releases it while it writes. WAL mode (set on the file by the main
    engine) lets this connection and the main engine's share the file; the
    busy timeout makes one writer wait for the other rather than fail.

    A small batch (at most :data:`INLINE_MAX_ROWS` rows: one or a few
    exchanges, as under light load) is committed on the event loop instead,
    on a second connection: the hop to the thread and back cost more than
    the commit itself (in the exchange benchmark at one client, ~0.3 ms of
    CPU per exchange on each server, and 5 ms GIL waits in the tail). That
    connection never waits: it has no busy timeout (a held write lock sends
    the batch to the thread, which waits) and no automatic WAL checkpoint (a
    checkpoint syncs the database file). After :data:`INLINE_CHECKPOINT_EVERY`
    inline commits the next batch goes to the thread, which checkpoints after
    its commit; the writer awaits it, so no commit races the checkpoint and
    the next one can start the WAL over (else it would only grow).
    """

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        self._dialect = dialect
        self._conn: sqlite3.Connection | None = None  # only used in the thread
        self._inline: sqlite3.Connection | None = None  # only on the event loop
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="messagelog")
        self._compiled: dict[tuple[str, tuple[str, ...]], CompiledInsert] = {}
        self._inserts: dict[str, Insert] = {
            "log": insert(_TABLE),
            "signature": insert(MessageSignature),
        }
        self._since_checkpoint = 0
        #: Batches committed on the event loop and in the thread.
        self.inline_commits = 0
        self.thread_commits = 0

    def _statement(self, which: str, keys: tuple[str, ...]) -> CompiledInsert:
        found = self._compiled.get((which, keys))
        if found is None:
            found = compile_insert(self._inserts[which], self._dialect, keys)
            self._compiled[(which, keys)] = found
        return found

    def _connect(self, *, waits: bool) -> sqlite3.Connection:
        """The thread's connection (``waits``) or the event loop's."""
        return connect_sqlite(self._path, waits=waits)

    def _insert_sync(self, work: _Work, checkpoint: bool) -> dict[str, int]:
        if self._conn is None:
            self._conn = self._connect(waits=True)
        # IMMEDIATE takes the write lock at BEGIN (waiting up to the busy
        # timeout) rather than failing half-way when another writer holds it.
        self._conn.execute("BEGIN IMMEDIATE")
        ids = _write(self._conn, work)
        if checkpoint:
            # PASSIVE: copies what it can, waiting for no reader or writer.
            # The batch is committed by now: a failed checkpoint must not
            # report it as lost. It loses nothing (the WAL keeps every
            # commit); the next one copies the rest.
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                _log.warning("message log WAL checkpoint failed: %s", exc)
        return ids

    def _insert_inline(self, work: _Work) -> dict[str, int] | None:
        """Commit on the calling (event-loop) thread; None: the lock is held."""
        if self._inline is None:
            self._inline = self._connect(waits=False)
        try:
            self._inline.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            # The primary code of any SQLITE_BUSY variant (extended codes
            # keep it in the low byte).
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                return None  # nothing written: the thread waits for the lock
            raise
        return _write(self._inline, work)

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
            sqlite3.Error: the database refused (nothing was stored).
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
        due = self._since_checkpoint >= INLINE_CHECKPOINT_EVERY
        if len(rows) <= INLINE_MAX_ROWS and not due:
            ids = self._insert_inline(work)
            if ids is not None:
                self.inline_commits += 1
                self._since_checkpoint += 1
                return ids
        loop = asyncio.get_running_loop()
        checkpoint = self._since_checkpoint > 0
        ids = await loop.run_in_executor(
            self._thread, self._insert_sync, work, checkpoint
        )
        self.thread_commits += 1
        if checkpoint:
            self._since_checkpoint = 0
        return ids

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Close the connections (each on its own thread) and stop the thread."""
        if self._inline is not None:
            self._inline.close()
            self._inline = None
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
    """Run ``work`` in the transaction ``conn`` began, then COMMIT."""
    ids = dict(work.known)
    try:
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
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return ids


def connect_sqlite(path: str, *, waits: bool) -> sqlite3.Connection:
    """A plain ``sqlite3`` connection to the server's database file.

    Args:
        path: the file.
        waits: wait up to 10 s for another writer's lock (a thread's
            connection); else fail at once, and leave WAL checkpoints to
            others (a connection used on the event loop).
    """
    # Autocommit mode: the transaction is the explicit BEGIN ... COMMIT.
    conn = sqlite3.connect(path, timeout=10.0 if waits else 0.0, isolation_level=None)
    # The main engine's per-connection settings (jplink.storage.db); the
    # journal mode (WAL) is a property of the file.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    if not waits:
        conn.execute("PRAGMA wal_autocheckpoint=0")  # a checkpoint syncs the file
    return conn


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


def sqlite_file(db: Database) -> str | None:
    """The path of ``db``'s SQLite file; None for PostgreSQL or in-memory."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:" or url.query:
        return None
    return url.database
