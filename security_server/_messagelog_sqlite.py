"""The message log's SQLite fast path: a whole batch in one thread hop.

Used by :class:`security_server.messagelog.MessageLogWriter` when the
database is a SQLite file; PostgreSQL goes through the engine.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, Table, insert

from jplink.storage import Database

from .models import MessageLogRecord

__all__ = ["SqliteSink", "sqlite_file"]

_TABLE: Table = MessageLogRecord.__table__  # type: ignore[assignment]

_Params = tuple[object, ...]


class SqliteSink:
    """Message-log inserts into a SQLite file in ONE thread hop per batch.

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
    """

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        self._dialect = dialect
        self._conn: sqlite3.Connection | None = None  # only used in the thread
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="messagelog")
        self._compiled: dict[tuple[str, ...], _Compiled] = {}

    def _statement(self, keys: tuple[str, ...]) -> _Compiled:
        found = self._compiled.get(keys)
        if found is None:
            compiled = insert(_TABLE).compile(
                dialect=self._dialect, column_keys=list(keys)
            )
            order = tuple(compiled.positiontup or ())
            if set(order) != set(keys):  # a column default we did not give
                raise ValueError(f"rows must give every column of {order}")
            processors = tuple(
                _TABLE.c[k]
                .type.dialect_impl(self._dialect)
                .bind_processor(self._dialect)
                for k in order
            )
            found = _Compiled(compiled.string, order, processors)
            self._compiled[keys] = found
        return found

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: the transaction is the explicit BEGIN ... COMMIT.
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        # The main engine's per-connection settings (jplink.storage.db); the
        # journal mode (WAL) is a property of the file.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _insert_sync(self, statements: list[tuple[str, list[_Params]]]) -> None:
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        # IMMEDIATE takes the write lock at BEGIN (waiting up to the busy
        # timeout) rather than failing half-way when another writer holds it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                conn.executemany(sql, params)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def insert(self, rows: list[dict[str, object]]) -> None:
        """Insert ``rows`` in one transaction: all or none.

        Raises:
            sqlite3.Error: the database refused (nothing was stored).
        """
        # Rows from LogEntry.row() all have the same columns: one statement.
        by_keys: dict[tuple[str, ...], list[dict[str, object]]] = {}
        for row in rows:
            by_keys.setdefault(tuple(row), []).append(row)
        statements = []
        for keys, group in by_keys.items():
            stmt = self._statement(keys)
            statements.append((stmt.sql, [stmt.parameters(r) for r in group]))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._insert_sync, statements)

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Close the connection (in its own thread) and stop the thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close_sync)
        self._thread.shutdown(wait=True)


@dataclass(frozen=True, slots=True)
class _Compiled:
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
