"""Writing the server's SQLite file from the event loop.

The message log's writer (:mod:`._messagelog_sqlite`) and the SQLite
time-stamper (:mod:`._timestamper_sqlite`) both write on the event loop:
``sqlite3`` gives the GIL up at every row's step, and a worker thread then
waits up to the interpreter's switch interval per row while a busy loop
runs Python. Here is what they share: a plain connection, a write
transaction, waiting for another connection's write lock by polling it
(the loop serves everything else meanwhile), and passive WAL checkpoints
(for a thread: one statement, the GIL free while it copies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from jplink.storage import Database

__all__ = [
    "LOCK_POLL_SECONDS",
    "LOCK_WAIT_SECONDS",
    "checkpoint",
    "connect_sqlite",
    "is_busy",
    "retry_while_busy",
    "sqlite_file",
    "write_transaction",
]

_log = logging.getLogger(__name__)

#: How long a transaction waits for another connection's write lock before it
#: fails (what SQLite's busy timeout was).
LOCK_WAIT_SECONDS = 10.0
#: How often a waiting transaction tries the write lock again.
LOCK_POLL_SECONDS = 0.001

_T = TypeVar("_T")


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT on ``conn``; ROLLBACK on any error.

    IMMEDIATE takes the write lock at BEGIN, rather than failing half-way
    when another writer holds it: a BEGIN refused as busy leaves nothing to
    undo, so :func:`retry_while_busy` can try the whole transaction again.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


async def retry_while_busy(
    action: Callable[..., _T],
    *args: Any,
    on_wait: Callable[[], None] | None = None,
) -> _T:
    """``action(*args)``, tried again while another connection holds a lock.

    For a connection without a busy timeout, used on the event loop: between
    attempts the loop serves everything else for :data:`LOCK_POLL_SECONDS`.
    SQLite's own busy handler would block the loop, and from a thread it
    sleeps in growing steps of up to 100 ms, usually past the moment the
    lock is free. ``action`` must leave nothing behind when it raises (a
    statement that failed to start, a transaction rolled back).

    Raises:
        sqlite3.Error: ``action``'s own errors; SQLITE_BUSY still after
            :data:`LOCK_WAIT_SECONDS`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOCK_WAIT_SECONDS
    waited = False
    while True:
        try:
            return action(*args)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            if loop.time() >= deadline:
                raise sqlite3.OperationalError(
                    f"database is locked: no lock within {LOCK_WAIT_SECONDS} s"
                ) from exc
        if not waited and on_wait is not None:
            on_wait()
        waited = True
        await asyncio.sleep(LOCK_POLL_SECONDS)


def checkpoint(conn: sqlite3.Connection) -> None:
    """A passive WAL checkpoint (for a thread: it copies and syncs pages).

    PASSIVE copies what it can, waiting for no reader or writer. It runs
    after commits: a failed checkpoint must not report them as lost. It
    loses nothing (the WAL keeps every commit); the next one copies the rest.
    """
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error as exc:
        _log.warning("message log WAL checkpoint failed: %s", exc)


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` is SQLITE_BUSY (a lock another connection holds)."""
    # The primary code of any SQLITE_BUSY variant (extended codes keep it in
    # the low byte).
    return exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


def connect_sqlite(path: str, *, waits: bool) -> sqlite3.Connection:
    """A plain ``sqlite3`` connection to the server's database file.

    Args:
        path: the file.
        waits: wait up to 10 s for another connection's lock (a thread's
            connection); else fail at once, and leave WAL checkpoints to
            others (a connection used on the event loop, whose callers
            wait for a lock by polling it, see :class:`SqliteSink`).
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


def sqlite_file(db: Database) -> str | None:
    """The path of ``db``'s SQLite file; None for PostgreSQL or in-memory."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:" or url.query:
        return None
    return url.database
