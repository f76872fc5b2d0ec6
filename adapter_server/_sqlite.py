"""The fast path for SQLite file data sources: one thread hop per call.

aiosqlite runs every step of a call (check out, begin, execute, fetch, roll
back, close) as a separate hop to its connection thread and back; for an
indexed SELECT those hops cost several times the query itself. Here the whole
call runs synchronously in one worker thread of a per-source pool, on a plain
(pysqlite) SQLAlchemy engine, and returns to the event loop once.

SQLite cannot be cancelled from another thread through aiosqlite either, so a
progress handler checks the deadline every few thousand virtual-machine steps
and interrupts the statement when ``query_timeout`` has passed: the query
really stops, and its connection goes back to the pool clean.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL

from .definitions import DataSourceDefinition

__all__ = ["ConnectFailed", "QueryInterrupted", "SqliteRunner", "fetch_page"]

#: SQLite virtual-machine instructions between two deadline checks.
_PROGRESS_STEPS = 10_000


class ConnectFailed(Exception):
    """The database file could not be opened (raised from the worker thread)."""


class QueryInterrupted(Exception):
    """The progress handler stopped a statement at its deadline."""


def fetch_page(result: Any, limit: int) -> tuple[list[Any], bool, tuple[object, ...]]:
    """Read at most ``limit`` rows (and one more to learn if more exist).

    The rows are kept as the driver's row objects: nothing is copied.

    Returns:
        (rows, has_more, driver type codes per column)
    """
    cursor = result.context.cursor
    codes = tuple(d[1] for d in (cursor.description if cursor else None) or ())
    rows = result.fetchmany(limit + 1)
    result.close()
    has_more = len(rows) > limit
    if has_more:
        del rows[limit:]
    return rows, has_more, codes


class SqliteRunner:
    """A synchronous engine and a thread pool for one SQLite file."""

    def __init__(self, url: URL, definition: DataSourceDefinition) -> None:
        self._timeout = definition.query_timeout
        self._engine: Engine = create_engine(
            url.set(drivername="sqlite+pysqlite"),
            pool_size=definition.pool_size,
            max_overflow=0,
            connect_args={
                "timeout": definition.connect_timeout,
                "check_same_thread": False,
            },
        )
        self._threads = ThreadPoolExecutor(
            max_workers=definition.pool_size,
            thread_name_prefix=f"sqlite-{definition.name}",
        )

    async def run(
        self,
        sql: str,
        values: Mapping[str, Any],
        *,
        read_only: bool,
        limit: int,
        commit: bool,
    ) -> tuple[list[Any], bool, tuple[object, ...], tuple[str, ...]]:
        """Run one statement in a worker thread.

        Returns:
            (rows, has_more, type codes, column names); a statement without
            rows gives one ``rowcount`` row.

        Raises:
            ConnectFailed: the file cannot be opened.
            QueryInterrupted: the statement ran past ``query_timeout``.
            sqlalchemy.exc.SQLAlchemyError: the statement failed.
        """
        call = functools.partial(
            self._run_sync, sql, dict(values), read_only, limit, commit
        )
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def _run_sync(
        self,
        sql: str,
        values: dict[str, Any],
        read_only: bool,
        limit: int,
        commit: bool,
    ) -> tuple[list[Any], bool, tuple[object, ...], tuple[str, ...]]:
        try:
            conn = self._engine.connect()
        except Exception as exc:
            raise ConnectFailed(type(exc).__name__) from exc
        try:
            raw = conn.connection.driver_connection
            deadline = time.monotonic() + self._timeout
            if isinstance(raw, sqlite3.Connection):
                raw.set_progress_handler(
                    lambda: int(time.monotonic() > deadline), _PROGRESS_STEPS
                )
            trans = conn.begin()
            try:
                result = conn.execute(text(sql), values)
                if result.returns_rows:
                    columns = tuple(result.keys())
                    rows, more, codes = fetch_page(result, limit)
                else:
                    rows, more, codes = [(result.rowcount,)], False, ()
                    columns = ("rowcount",)
                if read_only or not commit:
                    trans.rollback()
                else:
                    trans.commit()
                return rows, more, codes, columns
            except BaseException as exc:
                if trans.is_active:
                    trans.rollback()
                if time.monotonic() > deadline and "interrupt" in str(exc):
                    raise QueryInterrupted() from exc
                raise
            finally:
                if isinstance(raw, sqlite3.Connection):
                    raw.set_progress_handler(None, 0)
        finally:
            conn.close()

    async def close(self) -> None:
        """Stop the threads and close the connections."""
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._threads.shutdown(wait=True)
        self._engine.dispose()
