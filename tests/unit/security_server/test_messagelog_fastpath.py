"""The writer's fast path (Core inserts; on SQLite one transaction per batch
on the event loop) and the outcome columns it fills at logging time, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jplink.errors import StorageError
from jplink.identifiers import ClientId, ServiceId
from jplink.protocol.faults import build_fault
from jplink.storage import Database
from security_server import _messagelog_sqlite, _sqlite_writes, messagelog
from security_server._messagelog_sqlite import SqliteSink
from security_server.config import MessageLogMode
from security_server.db import open_database
from security_server.logcrypt import create_keystore, load_keystore
from security_server.messagelog import LogEntry, MessageLogWriter
from security_server.models import MessageLogRecord
from security_server.states import LogDirection
from tests.support.messagelog import entry

CLIENT = ClientId("JP-TEST", "COM", "1111").subsystem("client")
SERVICE = ServiceId("JP-TEST", "COM", "2222", "data", "getTrades")
OK_SOAP = b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><r/></e:Body></e:Envelope>'


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await open_database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


def _entry(
    query_id: str,
    now: dt.datetime,
    *,
    soap: bytes = OK_SOAP,
    fault: bool | None = None,
    fault_code: str | None = None,
) -> LogEntry:
    return entry(
        query_id,
        now,
        direction=LogDirection.RESPONSE,
        soap=soap,
        ocsp_ders=[b"ocsp"],
        x_request_id="r",
        fault=fault,
        fault_code=fault_code,
    )


async def _records(db: Database) -> dict[str, MessageLogRecord]:
    async with db.transaction() as session:
        found = (await session.execute(select(MessageLogRecord))).scalars()
        return {r.query_id: r for r in found}


async def test_outcome_recorded_at_logging_time(
    db: Database, now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = MessageLogWriter(db, MessageLogMode.FULL)
    fault = build_fault("Server.ServerProxy.ServiceFailed", "down", detail="d")
    try:
        # What the proxies pass: they know; nothing is parsed again.
        def no_parsing(message: bytes) -> object:
            raise AssertionError("the writer re-parsed a message it was told about")

        monkeypatch.setattr(messagelog, "message_outcome", no_parsing)
        await writer.write([_entry("told-ok", now, fault=False)])
        monkeypatch.undo()
        # A caller that does not say: the writer classifies the message.
        await writer.write(
            [_entry("unsaid-fault", now, soap=fault), _entry("unsaid-ok", now)]
        )
    finally:
        await writer.close()
    stored = await _records(db)
    assert (stored["told-ok"].fault, stored["told-ok"].fault_code) == (False, None)
    assert stored["unsaid-fault"].fault is True
    assert stored["unsaid-fault"].fault_code == "Server.ServerProxy.ServiceFailed"
    assert (stored["unsaid-ok"].fault, stored["unsaid-ok"].fault_code) == (False, None)


def test_a_fault_code_needs_a_fault(now: dt.datetime) -> None:
    entry = _entry("q", now, fault=False, fault_code="Server.X")
    assert entry.fault_code is None
    entry = _entry("q", now, fault=True, fault_code="Server.X")
    assert (entry.fault, entry.fault_code) == (True, "Server.X")


async def test_outcome_of_an_encrypted_or_metadata_record(
    db: Database, tmp_path: Path, now: dt.datetime
) -> None:
    keys = tmp_path / "keys.json"
    create_keystore(keys, now=now)
    fault = build_fault("Server.ClientProxy.X", "no", detail="d")
    encrypted = MessageLogWriter(db, MessageLogMode.FULL, keystore=load_keystore(keys))
    metadata = MessageLogWriter(db, MessageLogMode.METADATA)
    try:
        await encrypted.write([_entry("enc", now, soap=fault)])
        await metadata.write([_entry("meta", now, soap=fault)])
    finally:
        await encrypted.close()
        await metadata.close()
    stored = await _records(db)
    # Classified in clear, before encryption or the metadata mode hid it.
    assert stored["enc"].message not in (None, fault)
    assert stored["meta"].message is None
    for name in ("enc", "meta"):
        assert (stored[name].fault, stored[name].fault_code) == (
            True,
            "Server.ClientProxy.X",
        )


async def test_batches_share_a_transaction_on_both_databases(
    db: Database, now: dt.datetime
) -> None:
    writer = MessageLogWriter(db, MessageLogMode.FULL)
    try:
        await asyncio.gather(
            *(writer.write([_entry(f"q{i}", now, fault=False)]) for i in range(40))
        )
    finally:
        await writer.close()
    assert 1 <= writer.commits <= 3
    stored = await _records(db)
    assert sorted(stored) == sorted(f"q{i}" for i in range(40))
    # SQLite gives the UTC time back naive, PostgreSQL aware.
    assert {r.logged_at.replace(tzinfo=dt.UTC) for r in stored.values()} == {now}
    assert all(r.message == OK_SOAP for r in stored.values())


async def test_sqlite_batch_is_one_transaction_on_the_event_loop(
    tmp_path: Path, now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = await open_database(f"sqlite:///{tmp_path / 'ss.db'}")
    calls: list[int] = []
    threads: set[int] = set()
    real = _messagelog_sqlite._write

    def counting(conn: sqlite3.Connection, work: Any) -> dict[str, int]:
        # One transaction: the records' one shared signature document is
        # stored the first time only, then one INSERT of the records.
        assert len(work.documents) == (0 if calls else 1)
        ((sql, _, _, params),) = work.records
        assert "message_log" in sql
        calls.append(len(params))
        threads.add(threading.get_ident())
        return real(conn, work)

    monkeypatch.setattr(_messagelog_sqlite, "_write", counting)
    writer = MessageLogWriter(database, MessageLogMode.FULL)
    try:
        await asyncio.gather(
            *(
                writer.write([_entry(f"q{i}", now), _entry(f"r{i}", now)])
                for i in range(25)
            )
        )
        # A large batch too: a worker thread would wait for the GIL at
        # every row while the loop runs (security_server._messagelog_sqlite).
        await writer.write([_entry(f"big{i}", now) for i in range(300)])
    finally:
        await writer.close()
        await database.dispose()
    assert sum(calls) == 350
    assert len(calls) == writer.commits
    assert threads == {threading.get_ident()}


async def test_close_waits_for_the_batch_in_flight(
    db: Database, now: dt.datetime
) -> None:
    writer = MessageLogWriter(db, MessageLogMode.FULL)
    pending = asyncio.ensure_future(
        writer.write([_entry(f"q{i}", now, fault=False) for i in range(200)])
    )
    await asyncio.sleep(0)  # queued, the insert started
    await writer.close()
    await pending  # acknowledged, not cancelled
    assert len(await _records(db)) == 200


async def test_database_gone_fails_closed(tmp_path: Path, now: dt.datetime) -> None:
    database = await open_database(f"sqlite:///{tmp_path / 'ss.db'}")
    writer = MessageLogWriter(database, MessageLogMode.FULL)
    try:
        await writer.write([_entry("first", now)])
        async with database.engine.begin() as conn:  # the table is gone
            await conn.exec_driver_sql("ALTER TABLE message_log RENAME TO gone")
        with pytest.raises(StorageError) as info:
            await writer.write([_entry("second", now)])
        assert info.value.code == "LoggingFailed"
    finally:
        await writer.close()
        await database.dispose()


async def test_held_write_lock_waits_without_blocking_the_loop(
    tmp_path: Path, now: dt.datetime
) -> None:
    # Another connection holds the lock: the batch must not wait inside
    # SQLite on the event loop; it is retried until the lock is free.
    path = tmp_path / "ss.db"
    database = await open_database(f"sqlite:///{path}")
    writer = MessageLogWriter(database, MessageLogMode.FULL)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        await writer.write([_entry("before", now)])
        holder.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        started = loop.time()
        pending = asyncio.ensure_future(writer.write([_entry("held", now)]))
        for _ in range(20):
            await asyncio.sleep(0.01)
        # A bound on blocking, not a speed figure: a commit that waited for
        # the lock inside SQLite (any busy timeout) would hold the loop for
        # its whole timeout, seconds, before these 20 short sleeps could end.
        assert loop.time() - started < 2.0
        assert not pending.done()  # still waiting for the lock
        holder.execute("COMMIT")
        await asyncio.wait_for(pending, 10)
        stored = await _records(database)
        sink = writer._sink
        assert isinstance(sink, SqliteSink)
        assert sink.lock_waits == 1
    finally:
        holder.close()
        await writer.close()
        await database.dispose()
    assert sorted(stored) == ["before", "held"]


async def test_lock_held_too_long_fails_closed(
    tmp_path: Path, now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite_writes, "LOCK_WAIT_SECONDS", 0.2)
    path = tmp_path / "ss.db"
    database = await open_database(f"sqlite:///{path}")
    writer = MessageLogWriter(database, MessageLogMode.FULL)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageError) as info:
            await writer.write([_entry("refused", now)])
        assert info.value.code == "LoggingFailed"
        assert "no lock within 0.2 s" in info.value.message
        holder.execute("ROLLBACK")
        await writer.write([_entry("later", now)])  # the writer carries on
        stored = await _records(database)
    finally:
        holder.close()
        await writer.close()
        await database.dispose()
    assert sorted(stored) == ["later"]  # nothing half-written


async def _wal_after_small_batches(
    tmp_path: Path, now: dt.datetime, name: str, batches: int
) -> tuple[int, tuple[int, int]]:
    """WAL size and (commits, checkpoints) after ``batches`` lone records."""
    path = tmp_path / name
    database = await open_database(f"sqlite:///{path}")
    writer = MessageLogWriter(database, MessageLogMode.FULL)
    soap = OK_SOAP.replace(b"<r/>", b"<r>" + b"x" * 6000 + b"</r>")
    try:
        for i in range(batches):
            await writer.write([_entry(f"q{i}", now, soap=soap)])
        sink = writer._sink
        assert isinstance(sink, SqliteSink)
        commits = (writer.commits, sink.checkpoints)
        assert len(await _records(database)) == batches
        return Path(f"{path}-wal").stat().st_size, commits
    finally:
        await writer.close()
        await database.dispose()


async def test_commits_are_checkpointed(
    tmp_path: Path, now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer's connection has no automatic checkpoint: without the
    # thread's passive ones the WAL would grow with every commit.
    monkeypatch.setattr(_messagelog_sqlite, "CHECKPOINT_EVERY", 10**9)
    unbounded, commits = await _wal_after_small_batches(tmp_path, now, "a.db", 150)
    assert commits == (150, 0)
    assert unbounded > 150 * 6000  # every commit's pages are still there
    monkeypatch.setattr(_messagelog_sqlite, "CHECKPOINT_EVERY", 10)
    bounded, commits = await _wal_after_small_batches(tmp_path, now, "b.db", 150)
    # After every 10th commit the thread checkpointed; the WAL then started
    # over instead of growing.
    assert commits == (150, 15)
    assert bounded * 4 < unbounded


async def test_large_batches_are_checkpointed_by_records(
    tmp_path: Path, now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint copies what was written since the last one, and the
    # writer waits for it: large batches count by their records.
    monkeypatch.setattr(_messagelog_sqlite, "CHECKPOINT_ROWS", 10)
    database = await open_database(f"sqlite:///{tmp_path / 'ss.db'}")
    writer = MessageLogWriter(database, MessageLogMode.FULL)
    try:
        for b in range(5):
            await writer.write([_entry(f"q{b}-{i}", now) for i in range(6)])
        sink = writer._sink
        assert isinstance(sink, SqliteSink)
        # After the 2nd batch (12 records) and the 4th (12 more).
        assert (writer.commits, sink.checkpoints) == (5, 2)
        assert len(await _records(database)) == 30
    finally:
        await writer.close()
        await database.dispose()


class _CheckpointFails:
    """A sqlite3 connection whose WAL checkpoints fail (all else passes)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: object) -> object:
        if "wal_checkpoint" in sql:
            raise sqlite3.OperationalError("disk I/O error")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


async def test_failed_checkpoint_does_not_fail_the_committed_batch(
    tmp_path: Path,
    now: dt.datetime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(_messagelog_sqlite, "CHECKPOINT_EVERY", 2)
    path = tmp_path / "ss.db"
    database = await open_database(f"sqlite:///{path}")
    writer = MessageLogWriter(database, MessageLogMode.FULL)
    sink = writer._sink
    assert isinstance(sink, SqliteSink)
    sink._checkpointer = _CheckpointFails(  # type: ignore[assignment]
        sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    )
    try:
        for i in range(3):  # a checkpoint after the second
            await writer.write([_entry(f"q{i}", now)])
        stored = await _records(database)
    finally:
        await writer.close()
        await database.dispose()
    assert (writer.commits, sink.checkpoints) == (3, 1)
    assert sorted(stored) == ["q0", "q1", "q2"]
    assert "WAL checkpoint failed: disk I/O error" in caplog.text
