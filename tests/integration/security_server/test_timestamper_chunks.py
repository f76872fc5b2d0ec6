"""Linking a time-stamped batch to its token in chunks (SQLite), on both bases.

On a SQLite file the time-stamper links the records of a batch in
transactions of ``STORE_CHUNK`` records, so that SQLite's write lock (which
the exchanges' log commits wait for) is never held long; PostgreSQL links a
batch in one transaction. The chunk size is set to 2 here so that a batch of
5 spans three chunks.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import sqlite3
import threading
from dataclasses import dataclass

import pytest
from sqlalchemy import update

from jplink.clients.tsa import FakeTsaClient
from jplink.errors import StorageError
from jplink.security.hashchain import verify_hash_chain
from jplink.storage import Database
from security_server import _timestamper_sqlite
from security_server.models import MessageLogRecord, MessageTimestamp
from security_server.timestamper import (
    TS_DATA_REF_URI,
    TS_HASH_CHAIN_URI,
    Timestamper,
)

from .test_timestamper import (
    Clock,
    Tsa,
    log_records,
    make_stamper,
    make_tsa,
    records,
    stamp_rows,
)

pytestmark = pytest.mark.usefixtures("small_chunks")


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_timestamper_sqlite, "STORE_CHUNK", 2)


def _sqlite(db: Database) -> bool:
    return db.engine.url.get_backend_name() == "sqlite"


@dataclass
class Backlog:
    """Five logged records, a TSA and a time-stamper with a batch of 10 000."""

    tsa: Tsa
    stamper: Timestamper
    client: FakeTsaClient


@pytest.fixture
async def backlog(db: Database, now: dt.datetime) -> Backlog:
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    await log_records(db, 5, now)
    stamper, client = make_stamper(db, tsa, clock)
    return Backlog(tsa, stamper, client)


async def test_a_batch_over_several_chunks_has_one_token(
    db: Database, backlog: Backlog
) -> None:
    batch = await backlog.stamper.stamp_batch()
    assert batch is not None and len(batch.record_ids) == 5
    assert len(backlog.client.calls) == 1
    [stamp] = await stamp_rows(db)
    rows = await records(db)
    assert [r.timestamp_id for r in rows] == [stamp.id] * 5
    assert stamp.hash_chain_result is not None
    for row in rows:
        verify_hash_chain(
            stamp.hash_chain_result.encode(),
            (row.timestamp_hash_chain or "").encode(),
            digests={TS_DATA_REF_URI: base64.b64decode(row.signature_hash)},
            hash_chain_uri=TS_HASH_CHAIN_URI,
        )


async def test_a_conflict_in_a_later_chunk_keeps_the_chunks_before_it(
    db: Database, now: dt.datetime, backlog: Backlog
) -> None:
    tsa, stamper = backlog.tsa, backlog.stamper
    ids = [r.id for r in await records(db)]

    async def race() -> None:
        # While our TSA request is in flight, another time-stamper stamps
        # the fourth record (in our second chunk).
        tsa.hook = None
        async with db.transaction() as session:
            theirs = MessageTimestamp(
                token_der=b"\x30\x00",
                hash_chain_result=None,
                gen_time=now,
                tsa_url="http://other.test/",
                created_at=now,
            )
            session.add(theirs)
            await session.flush()
            await session.execute(
                update(MessageLogRecord)
                .where(MessageLogRecord.id == ids[3])
                .values(timestamp_id=theirs.id)
            )

    tsa.hook = race
    with pytest.raises(StorageError) as info:
        await stamper.stamp_batch()
    assert info.value.code == "TimestampConflict"
    stamps = await stamp_rows(db)
    theirs_id = stamps[0].id
    linked = [r.timestamp_id for r in await records(db)]
    if _sqlite(db):
        # The first chunk stays linked to our token; the chunk with the
        # conflict was rolled back, the last never written.
        assert len(stamps) == 2
        ours = stamps[1].id
        assert linked == [ours, ours, None, theirs_id, None]
    else:
        # One transaction: nothing of ours was kept.
        assert len(stamps) == 1
        assert linked == [None, None, None, theirs_id, None]
    # The next run stamps what still waits, and no record has two tokens.
    expected = 2 if _sqlite(db) else 4
    assert await stamper.run_once() == expected
    final = [r.timestamp_id for r in await records(db)]
    assert None not in final and final[3] == theirs_id
    if _sqlite(db):
        assert final[:2] == linked[:2]


async def test_sqlite_store_waits_for_a_held_lock_on_the_event_loop(
    db: Database, backlog: Backlog, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _sqlite(db):
        pytest.skip("SQLite's database-wide write lock")
    # Every statement of the run (but the checkpoints) on the loop's thread:
    # in a worker thread each row's step waits for the GIL again while the
    # busy loop runs Python (security_server._timestamper_sqlite).
    threads: dict[str, set[int]] = {}
    plain_connect = _timestamper_sqlite.connect_sqlite

    def traced(path: str, *, waits: bool) -> sqlite3.Connection:
        conn = plain_connect(path, waits=waits)

        def trace(sql: str) -> None:
            word = sql.split()[0].upper()
            threads.setdefault(word, set()).add(threading.get_ident())

        conn.set_trace_callback(trace)
        return conn

    monkeypatch.setattr(_timestamper_sqlite, "connect_sqlite", traced)
    path = db.engine.url.database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # as a log commit in another process
        loop = asyncio.get_running_loop()
        started = loop.time()
        run = asyncio.ensure_future(backlog.stamper.stamp_batch())
        for _ in range(20):
            await asyncio.sleep(0.01)
        # A bound on blocking, not a speed figure: waiting inside SQLite (a
        # busy timeout) on the loop would stop these sleeps for seconds.
        assert loop.time() - started < 2.0
        assert not run.done()  # the store waits for the lock
        holder.execute("ROLLBACK")
        batch = await asyncio.wait_for(run, 10)
    finally:
        holder.close()
    assert batch is not None and len(batch.record_ids) == 5
    [stamp] = await stamp_rows(db)
    assert [r.timestamp_id for r in await records(db)] == [stamp.id] * 5
    here = threading.get_ident()
    for word in ("SELECT", "BEGIN", "UPDATE", "COMMIT"):
        assert threads[word] == {here}, word
    assert "PRAGMA" in threads  # the WAL checkpoints, in a thread
