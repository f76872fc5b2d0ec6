"""The time-stamper's database work on a SQLite file, on the event loop in
short steps.

A run reads the records waiting for a time-stamp, builds their hash chains,
asks a TSA, then stores the token and links every record to it. With a
thousand records or more per run (a busy server at X-Road's 60 s), the reads
and the UPDATE through SQLAlchemy and aiosqlite built a parameter dict per
record and converted every row on the event loop: stalls of 20-30 ms in the
exchanges' tail latency at every run. Here both database steps use a plain
``sqlite3`` connection opened for the run (a run is seconds apart; the
connection costs well under a millisecond), with statements compiled once by
SQLAlchemy.

They run on the event loop, not in a thread: ``sqlite3`` gives the GIL up
around every row's step, and a thread waits for it again while the busy
event loop runs Python, up to the interpreter's 5 ms switch interval per
row. The records are linked to their token in transactions of
:data:`STORE_CHUNK` records (the token's row goes in with the first), each a
few milliseconds, and the loop serves the exchanges between them, so the
message-log writer (also on the loop) commits between two chunks instead of
waiting out the run. A lock held by another connection is waited for as the
writer does (:func:`._sqlite_writes.retry_while_busy`).

The semantics are those of the engine's path
(:mod:`security_server._timestamper_engine`), with one difference: the
chunks. Each UPDATE is conditional on ``timestamp_id IS NULL``, and a chunk
that finds a record stamped meanwhile is rolled back whole and ends the run.
A crash or a conflict between chunks leaves the records linked so far with a
token that covers them (it was computed over the whole batch) and the others
waiting for the next run: no record is lost, none has two time-stamps, and
no token is stored without a record pointing to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, Table, bindparam, insert, select, update

from jplink.errors import StorageError

from ._messagelog_sqlite import CompiledInsert, compile_insert
from ._sqlite_writes import (
    checkpoint,
    connect_sqlite,
    retry_while_busy,
    write_transaction,
)
from .messagelog_models import MessageLogRecord, MessageTimestamp

__all__ = ["STORE_CHUNK", "SqliteStampStore", "StampRow"]

_LOG: Table = MessageLogRecord.__table__  # type: ignore[assignment]
_TS: Table = MessageTimestamp.__table__  # type: ignore[assignment]

_TS_KEYS = ("token_der", "hash_chain_result", "gen_time", "tsa_url", "created_at")

#: Records linked to their time-stamp per transaction. Each UPDATE rewrites
#: the whole record (message, OCSP responses, chains: ~8 KB), so a batch of
#: thousands in one transaction held SQLite's write lock for 50-200 ms, and
#: every exchange waiting for its log commit with it (the exchange
#: benchmark's p99 was set by those stops). 128 records take 1-3 ms.
STORE_CHUNK = 128


@dataclass(frozen=True, slots=True)
class StampRow:
    """The ``message_timestamp`` row of one stored token."""

    token_der: bytes
    hash_chain_result: str | None
    gen_time: dt.datetime
    tsa_url: str
    created_at: dt.datetime


class SqliteStampStore:
    """Reads waiting records and stores tokens, on the event loop.

    Args:
        path: the database file.
        dialect: the engine's dialect (how columns are bound).
    """

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        self._insert: CompiledInsert = compile_insert(insert(_TS), dialect, _TS_KEYS)
        stmt = (
            update(_LOG)
            .where(_LOG.c.id == bindparam("rid"), _LOG.c.timestamp_id.is_(None))
            .values(timestamp_id=bindparam("tid"), timestamp_hash_chain=bindparam("c"))
        )
        compiled = stmt.compile(dialect=dialect)
        self._update = compiled.string
        self._update_order = tuple(compiled.positiontup or ())
        if sorted(self._update_order) != ["c", "rid", "tid"]:  # pragma: no cover
            raise ValueError(f"unexpected UPDATE parameters {self._update_order}")
        waiting = (
            select(_LOG.c.id, _LOG.c.signature_hash)
            .where(_LOG.c.timestamp_id.is_(None))
            .order_by(_LOG.c.id)
            .limit(bindparam("n"))
        )
        self._pending = waiting.compile(dialect=dialect)

    async def pending(self, limit: int) -> list[tuple[int, str]]:
        """(id, signature_hash) of the oldest records without a time-stamp.

        Raises:
            StorageError: the database failed.
        """
        # (SQLite's LIMIT comes with an OFFSET of 0.)
        given = self._pending.construct_params({"n": limit})
        params = tuple(given[k] for k in self._pending.positiontup or ())
        try:
            with contextlib.closing(connect_sqlite(self._path, waits=False)) as conn:
                rows = await retry_while_busy(self._read, conn, params)
        except sqlite3.Error as exc:
            raise StorageError(f"Reading the message log failed: {exc}") from exc
        return [(int(i), str(h)) for i, h in rows]

    def _read(self, conn: sqlite3.Connection, params: tuple[object, ...]) -> list[Any]:
        return conn.execute(self._pending.string, params).fetchall()

    async def store(
        self, row: StampRow, ids: Sequence[int], chains: Sequence[bytes | None]
    ) -> int:
        """Store ``row`` and link the records ``ids`` to it (with their chains).

        Returns:
            The new ``message_timestamp`` id.

        Raises:
            StorageError: the database failed, or some record had been
                time-stamped meanwhile (code ``TimestampConflict``); the
                chunks committed before it stay linked to the token.
        """
        values = {k: getattr(row, k) for k in _TS_KEYS}
        pairs = list(zip(ids, chains, strict=True))
        timestamp_id: int | None = None
        try:
            with contextlib.closing(connect_sqlite(self._path, waits=False)) as conn:
                for start in range(0, len(pairs), STORE_CHUNK):
                    if start:
                        # The exchanges' turn, while the last chunk's pages
                        # (about a megabyte: every linked record is written
                        # again) are copied from the WAL in a thread (one
                        # statement, the GIL free while it copies). Left to
                        # the message-log writer's next checkpoint, they
                        # would make the exchanges wait for it.
                        await asyncio.to_thread(self._checkpoint_sync)
                    chunk = pairs[start : start + STORE_CHUNK]
                    timestamp_id = await retry_while_busy(
                        self._store_chunk, conn, values, timestamp_id, chunk, start
                    )
        except sqlite3.Error as exc:
            raise StorageError(f"Storing the time-stamp failed: {exc}") from exc
        assert timestamp_id is not None
        await asyncio.to_thread(self._checkpoint_sync)  # the last chunk's
        return timestamp_id

    def _checkpoint_sync(self) -> None:
        with contextlib.closing(connect_sqlite(self._path, waits=True)) as conn:
            checkpoint(conn)

    def _store_chunk(
        self,
        conn: sqlite3.Connection,
        values: dict[str, object],
        timestamp_id: int | None,
        chunk: Sequence[tuple[int, bytes | None]],
        done: int,
    ) -> int:
        """One transaction: the token's row (first chunk) and ``chunk``'s links."""
        with write_transaction(conn):
            if timestamp_id is None:  # with the first chunk's links
                cursor = conn.execute(self._insert.sql, self._insert.parameters(values))
                if cursor.lastrowid is None:  # pragma: no cover
                    raise StorageError("No id for the stored time-stamp")
                timestamp_id = int(cursor.lastrowid)
            self._link(conn, timestamp_id, chunk, done=done)
        return timestamp_id

    def _link(
        self,
        conn: sqlite3.Connection,
        timestamp_id: int,
        chunk: Sequence[tuple[int, bytes | None]],
        *,
        done: int,
    ) -> None:
        """Point the records of ``chunk`` at the token, or raise (conflict)."""

        def bound(record_id: int, chain: bytes | None) -> list[object]:
            text = None if chain is None else chain.decode()
            values = {"rid": record_id, "tid": timestamp_id, "c": text}
            return [values[k] for k in self._update_order]

        cursor = conn.executemany(self._update, (bound(i, c) for i, c in chunk))
        # executemany sums the rows each UPDATE changed.
        if cursor.rowcount != len(chunk):
            # Another time-stamper got some of them first: this chunk is
            # rolled back, so no record ends up with two time-stamps.
            raise StorageError(
                f"{len(chunk) - cursor.rowcount} records were time-stamped "
                f"concurrently; {done} of the batch were linked to this "
                "time-stamp, the rest wait for the next run",
                code="TimestampConflict",
            )
