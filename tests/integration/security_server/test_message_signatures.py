"""A signature document is stored once (``message_signature``), on SQLite and
PostgreSQL: the writer, retention and migration 0007 with data."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass

import pytest
from alembic import command
from sqlalchemy import Connection, DateTime, bindparam, inspect, select, text, update

from jplink.errors import StorageError
from jplink.identifiers import ClientId, ServiceId
from jplink.storage import Database, create_database, upgrade_database
from jplink.storage.migrations import alembic_config
from security_server.config import MessageLogMode
from security_server.db import MIGRATIONS
from security_server.messagelog import LogEntry, MessageLogWriter
from security_server.models import MessageLogRecord
from security_server.retention import delete_expired_records
from tests.support.messagelog import entry, unstorable

CLIENT = ClientId("JP-TEST", "COM", "1111").subsystem("client")
SERVICE = ServiceId("JP-TEST", "COM", "2222", "data", "getTrades")
SOAP = b"<e:Envelope xmlns:e='http://schemas.xmlsoap.org/soap/envelope/'/>"
# Batch-sized documents, not ASCII only: the key is over the UTF-8 bytes.
SIG_A = ("<ds:Signature Id='a'>署名" + "A" * 4000 + "</ds:Signature>").encode()
SIG_B = ("<ds:Signature Id='b'>é" + "B" * 4000 + "</ds:Signature>").encode()
SIG_C = b"<ds:Signature Id='c'/>"


def _key(document: bytes) -> str:
    """base64(SHA-512(bytes)), computed here independently of the code."""
    return base64.b64encode(hashlib.sha512(document).digest()).decode("ascii")


def _entry(query_id: str, at: dt.datetime, signature: bytes) -> LogEntry:
    return entry(query_id, at, soap=SOAP, signature_xml=signature, fault=False)


async def _write(db: Database, *batches: list[LogEntry]) -> None:
    writer = MessageLogWriter(db, MessageLogMode.FULL)
    try:
        for batch in batches:
            await writer.write(batch)
    finally:
        await writer.close()


async def _documents(db: Database) -> dict[str, str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT signature_hash, signature_xml FROM message_signature")
        )
        return {str(h): str(x) for h, x in rows}


async def _count(db: Database, table: str) -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(text(f"SELECT COUNT(*) FROM {table}")) or 0)


async def _records(db: Database) -> dict[str, tuple[str, str]]:
    """query_id -> (signature_hash, signature_xml) as the ORM reads them."""
    async with db.transaction() as session:
        found = (await session.execute(select(MessageLogRecord))).scalars()
        return {r.query_id: (r.signature_hash, r.signature_xml) for r in found}


async def test_writer_stores_each_document_once(db: Database, now: dt.datetime) -> None:
    first = [_entry(f"q{i}", now, SIG_A) for i in (1, 2, 3)]
    # The second transaction repeats A (already stored) and adds B.
    second = [_entry("q4", now, SIG_A), *(_entry(f"q{i}", now, SIG_B) for i in (5, 6))]
    await _write(db, first, second)
    assert await _documents(db) == {
        _key(SIG_A): SIG_A.decode(),
        _key(SIG_B): SIG_B.decode(),
    }
    assert await _count(db, "message_signature") == 2
    expected = {f"q{i}": SIG_A for i in (1, 2, 3, 4)} | {"q5": SIG_B, "q6": SIG_B}
    assert await _records(db) == {
        q: (_key(sig), sig.decode()) for q, sig in expected.items()
    }


async def test_another_writer_stores_a_document_again_and_both_read_back(
    db: Database, now: dt.datetime
) -> None:
    # Writers (worker processes) do not share what they stored: the second
    # stores A again under its own id; each record names a complete copy.
    await _write(db, [_entry("w1", now, SIG_A)])
    await _write(db, [_entry("w2", now, SIG_A)])
    assert await _count(db, "message_signature") == 2
    assert await _records(db) == {
        q: (_key(SIG_A), SIG_A.decode()) for q in ("w1", "w2")
    }


async def test_failed_write_stores_neither_record_nor_document(
    db: Database, now: dt.datetime
) -> None:
    broken = unstorable(_entry("bad", now, SIG_C))  # a NOT NULL column left empty
    writer = MessageLogWriter(db, MessageLogMode.FULL)
    try:
        await writer.write([_entry("kept", now, SIG_A)])
        with pytest.raises(StorageError) as failed:
            await writer.write([broken])
        assert failed.value.code == "LoggingFailed"
        # C was inserted before the record, in the same transaction: rolled back.
        assert await _documents(db) == {_key(SIG_A): SIG_A.decode()}
        assert set(await _records(db)) == {"kept"}
        async with db.engine.connect() as conn:
            counts = [
                await conn.scalar(text(f"SELECT COUNT(*) FROM {table}"))
                for table in ("message_log", "message_signature")
            ]
        assert counts == [1, 1]
        # The same writer goes on: C is stored with a good record.
        await writer.write([_entry("later", now, SIG_C)])
    finally:
        await writer.close()
    assert set(await _documents(db)) == {_key(SIG_A), _key(SIG_C)}
    assert set(await _records(db)) == {"kept", "later"}


async def _archive(db: Database, *query_ids: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(MessageLogRecord)
            .where(MessageLogRecord.query_id.in_(query_ids))
            .values(archived=True)
        )


async def test_retention_deletes_a_document_with_its_last_record(
    db: Database, now: dt.datetime
) -> None:
    old = now - dt.timedelta(days=31)
    await _write(
        db,
        [_entry(f"a{i}", old, SIG_A) for i in (1, 2, 3)],
        [_entry("b1", old, SIG_B), _entry("c-recent", now, SIG_C)],
    )
    # a3 is not archived: kept however old; c-recent is archived but young.
    await _archive(db, "a1", "a2", "b1", "c-recent")
    # chunk=1: A's records are deleted in separate transactions.
    result = await delete_expired_records(db, keep_days=30, now=now, chunk=1)
    assert (result.records, result.signatures) == (3, 1)
    assert await _records(db) == {
        "a3": (_key(SIG_A), SIG_A.decode()),
        "c-recent": (_key(SIG_C), SIG_C.decode()),
    }
    assert set(await _documents(db)) == {_key(SIG_A), _key(SIG_C)}
    await _archive(db, "a3")
    result = await delete_expired_records(db, keep_days=30, now=now, chunk=1)
    assert (result.records, result.signatures) == (1, 1)
    assert await _documents(db) == {_key(SIG_C): SIG_C.decode()}
    assert set(await _records(db)) == {"c-recent"}


_OLD_INSERT = text(
    "INSERT INTO message_log (query_id, client, service, direction, side, "
    "logged_at, message, signature_xml, signature_hash, signer_cert_sha256, "
    "ocsp_responses, archived) VALUES (:query_id, 'c', 's', 'request', "
    "'client_proxy', :logged_at, NULL, :signature_xml, :signature_hash, "
    "'00', '[]', :archived)"
).bindparams(bindparam("logged_at", type_=DateTime(timezone=True)))
_OLD_ROWS = {"m1": SIG_A, "m2": SIG_B, "m3": SIG_A, "m4": SIG_A}


def _downgrade_to_0006(conn: Connection) -> None:
    # As jplink.storage.migrations.upgrade_database runs an upgrade.
    cfg = alembic_config(MIGRATIONS)
    cfg.attributes["connection"] = conn
    command.downgrade(cfg, "0006")


@dataclass(frozen=True)
class _Schema:
    tables: set[str]
    #: message_log's columns: name -> nullable.
    columns: dict[str, bool]
    indexes: set[str | None]
    #: Tables message_log's foreign keys refer to.
    referred: set[str]


def _schema(conn: Connection) -> _Schema:
    found = inspect(conn)
    return _Schema(
        tables=set(found.get_table_names()),
        columns={c["name"]: c["nullable"] for c in found.get_columns("message_log")},
        indexes={i["name"] for i in found.get_indexes("message_log")},
        referred={f["referred_table"] for f in found.get_foreign_keys("message_log")},
    )


async def _untimestamped_index_sql(db: Database) -> str:
    query = (
        "SELECT sql FROM sqlite_master WHERE name = :n"
        if db.is_sqlite
        else "SELECT indexdef FROM pg_indexes WHERE indexname = :n"
    )
    async with db.engine.connect() as conn:
        sql = await conn.scalar(text(query), {"n": "ix_message_log_untimestamped"})
    return str(sql)


async def test_migration_moves_documents_and_back(
    db_url: str, now: dt.datetime
) -> None:
    db = create_database(db_url)
    try:
        await upgrade_database(db, MIGRATIONS, revision="0006")
        async with db.engine.begin() as conn:
            for i, (query_id, sig) in enumerate(_OLD_ROWS.items()):
                await conn.execute(
                    _OLD_INSERT,
                    {
                        "query_id": query_id,
                        "logged_at": now + dt.timedelta(seconds=i),
                        "signature_xml": sig.decode(),
                        "signature_hash": _key(sig),
                        "archived": False,
                    },
                )

        await upgrade_database(db, MIGRATIONS)
        assert await _documents(db) == {
            _key(SIG_A): SIG_A.decode(),
            _key(SIG_B): SIG_B.decode(),
        }
        assert await _records(db) == {
            q: (_key(sig), sig.decode()) for q, sig in _OLD_ROWS.items()
        }
        async with db.engine.connect() as conn:
            schema = await conn.run_sync(_schema)
        assert "signature_xml" not in schema.columns
        assert "ix_message_log_signature_id" in schema.indexes
        assert "ix_message_log_timestamp_id" in schema.indexes  # retention's
        assert "message_signature" in schema.referred
        # The time-stamper's partial index keeps its WHERE through the rebuild.
        where = "WHERE timestamp_id IS NULL"
        if not db.is_sqlite:
            where = "WHERE (timestamp_id IS NULL)"
        assert where in await _untimestamped_index_sql(db)

        async with db.engine.begin() as conn:
            await conn.run_sync(_downgrade_to_0006)
        async with db.engine.connect() as conn:
            schema = await conn.run_sync(_schema)
            rows = await conn.execute(
                text("SELECT query_id, signature_xml, signature_hash FROM message_log")
            )
            restored = {str(q): (str(x), str(h)) for q, x, h in rows}
        assert restored == {
            q: (sig.decode(), _key(sig)) for q, sig in _OLD_ROWS.items()
        }
        assert "message_signature" not in schema.tables
        assert schema.columns["signature_xml"] is False  # NOT NULL again
        assert "message_signature" not in schema.referred
        assert "ix_message_log_signature_id" not in schema.indexes
        assert "ix_message_log_timestamp_id" not in schema.indexes
        assert where in await _untimestamped_index_sql(db)
    finally:
        await db.dispose()
