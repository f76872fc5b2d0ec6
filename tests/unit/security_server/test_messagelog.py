"""The message-log writer: records of waiting exchanges share one commit."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from jplink.errors import StorageError
from jplink.identifiers import ClientId, ServiceId
from jplink.storage import Database
from security_server.config import MessageLogMode
from security_server.db import open_database
from security_server.messagelog import LogEntry, MessageLogWriter
from security_server.models import MessageLogRecord
from tests.support.messagelog import entry, unstorable

CLIENT = ClientId("JP-TEST", "COM", "1111").subsystem("client")
SERVICE = ServiceId("JP-TEST", "COM", "2222", "data", "getTrades")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite:///{tmp_path / 'ss.db'}")
    try:
        yield database
    finally:
        await database.dispose()


def _entry(i: int, now: dt.datetime, mode: MessageLogMode) -> LogEntry:
    return entry(
        f"q{i}",
        now,
        soap=f"<m>{i}</m>".encode(),
        ocsp_ders=[b"ocsp"],
        mode=mode,
        x_request_id="r",
    )


def test_entry_columns(now: dt.datetime) -> None:
    entry = _entry(1, now, MessageLogMode.FULL)
    # PROTOCOLS.md §12.1: signaturehash = base64(SHA-512(signature XML)).
    assert (
        entry.signature_hash
        == base64.b64encode(hashlib.sha512(b"<sig/>").digest()).decode()
    )
    assert entry.signer_cert_sha256 == hashlib.sha256(b"cert").hexdigest()
    assert json.loads(entry.ocsp_responses) == [base64.b64encode(b"ocsp").decode()]
    assert entry.message == b"<m>1</m>"
    assert _entry(1, now, MessageLogMode.METADATA).message is None


async def test_concurrent_writes_are_committed_together(
    db: Database, now: dt.datetime
) -> None:
    writer = MessageLogWriter(db, MessageLogMode.FULL)
    try:
        await asyncio.gather(
            *(writer.write([_entry(i, now, MessageLogMode.FULL)]) for i in range(50))
        )
    finally:
        await writer.close()
    # Every caller returned after its record was committed, in few commits.
    assert writer.commits <= 2
    async with db.transaction() as session:
        rows = (await session.execute(select(MessageLogRecord))).scalars().all()
    assert sorted(r.query_id for r in rows) == sorted(f"q{i}" for i in range(50))
    assert {r.client for r in rows} == {str(CLIENT)}
    assert all(r.timestamp_id is None and not r.archived for r in rows)


async def test_mode_none_stores_nothing(db: Database, now: dt.datetime) -> None:
    writer = MessageLogWriter(db, MessageLogMode.NONE)
    await writer.write([_entry(1, now, MessageLogMode.NONE)])
    async with db.transaction() as session:
        count = await session.scalar(select(func.count(MessageLogRecord.id)))
    assert count == 0


async def test_failed_commit_fails_every_waiter_and_writer_recovers(
    db: Database, now: dt.datetime
) -> None:
    writer = MessageLogWriter(db, MessageLogMode.FULL)
    # A NOT NULL column left empty: the whole batch's INSERT fails.
    broken = unstorable(_entry(1, now, MessageLogMode.FULL))
    try:
        outcomes = await asyncio.gather(
            writer.write([broken]),
            writer.write([_entry(2, now, MessageLogMode.FULL)]),
            return_exceptions=True,
        )
        assert all(
            isinstance(o, StorageError) and o.code == "LoggingFailed" for o in outcomes
        )
        await writer.write([_entry(3, now, MessageLogMode.FULL)])
    finally:
        await writer.close()
    async with db.transaction() as session:
        ids = (await session.execute(select(MessageLogRecord.query_id))).scalars().all()
    assert ids == ["q3"]  # nothing of the failed batch was stored
