"""Per-subsystem log modes, encryption at rest (logcrypt) and retention."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from jplink.errors import ConfigurationError, Conflict, SecurityError
from jplink.identifiers import ClientId, ServiceId
from jplink.storage import Database
from security_server.config import (
    CONFIG_FILE,
    MessageLogMode,
    load_ss_config,
)
from security_server.db import open_database
from security_server.logcrypt import (
    create_keystore,
    load_keystore,
    record_aad,
    rotate_keystore,
)
from security_server.messagelog import LogEntry, open_message_log_writer
from security_server.models import MessageLogRecord, MessageTimestamp
from security_server.retention import delete_expired_records
from security_server.states import LogSide
from tests.support.messagelog import entry as record_entry

CONSUMER = ClientId("JP-TEST", "COM", "1111").subsystem("client")
QUIET = ClientId("JP-TEST", "COM", "1111").subsystem("quiet")
PROVIDER_SERVICE = ServiceId("JP-TEST", "COM", "2222", "data", "getTrades")


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await open_database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


def entry(
    client: ClientId, side: LogSide, now: dt.datetime, mode: MessageLogMode
) -> LogEntry:
    return record_entry(
        f"q-{client.subsystem_code}-{side.value}",
        now,
        client=client,
        service=PROVIDER_SERVICE,
        side=side,
        soap=b"<secret>body</secret>",
        mode=mode,
    )


def write_config(home: Path, body: str) -> None:
    home.mkdir(exist_ok=True)
    (home / CONFIG_FILE).write_text(body)


async def rows(db: Database) -> dict[str, MessageLogRecord]:
    async with db.transaction() as session:
        found = (await session.execute(select(MessageLogRecord))).scalars()
        return {r.query_id: r for r in found}


async def test_subsystem_overrides_narrow_and_widen_the_default(
    db: Database, tmp_path: Path, now: dt.datetime
) -> None:
    write_config(
        tmp_path,
        '[message_log]\nmode = "metadata"\n'
        '[[message_log.subsystems]]\nclient = "SUBSYSTEM:JP-TEST/COM/1111/client"\n'
        'mode = "full"\n'
        '[[message_log.subsystems]]\nclient = "SUBSYSTEM:JP-TEST/COM/1111/quiet"\n'
        'mode = "none"\n',
    )
    settings = load_ss_config(tmp_path).message_log
    writer = open_message_log_writer(db, settings)
    # The proxies capture with the widest mode; the writer narrows per client.
    assert writer.mode is MessageLogMode.FULL
    try:
        await writer.write(
            [
                entry(CONSUMER, LogSide.CLIENT_PROXY, now, writer.mode),
                entry(QUIET, LogSide.CLIENT_PROXY, now, writer.mode),
                # On the server proxy the local client is the provider, which
                # has no override: the default (metadata) applies.
                entry(CONSUMER, LogSide.SERVER_PROXY, now, writer.mode),
            ]
        )
    finally:
        await writer.close()
    stored = await rows(db)
    assert set(stored) == {"q-client-client-proxy", "q-client-server-proxy"}
    assert stored["q-client-client-proxy"].message == b"<secret>body</secret>"
    assert stored["q-client-server-proxy"].message is None


def test_duplicate_or_unknown_override_is_refused(tmp_path: Path) -> None:
    client = '"SUBSYSTEM:JP-TEST/COM/1111/client"'
    write_config(
        tmp_path,
        f"[[message_log.subsystems]]\nclient = {client}\nmode = 'full'\n" * 2,
    )
    with pytest.raises(ConfigurationError, match="twice"):
        load_ss_config(tmp_path)
    write_config(
        tmp_path, f"[[message_log.subsystems]]\nclient = {client}\nmode = 'all'\n"
    )
    with pytest.raises(ConfigurationError, match="all"):
        load_ss_config(tmp_path)


async def test_bodies_encrypted_at_rest_and_rotation(
    db: Database, tmp_path: Path, now: dt.datetime
) -> None:
    keys = tmp_path / "logkeys.json"
    first = create_keystore(keys, now=now)
    assert os.stat(keys).st_mode & 0o777 == 0o600
    write_config(tmp_path, '[message_log]\nencryption_keystore = "logkeys.json"\n')
    settings = load_ss_config(tmp_path).message_log
    writer = open_message_log_writer(db, settings)
    try:
        await writer.write([entry(CONSUMER, LogSide.CLIENT_PROXY, now, writer.mode)])
    finally:
        await writer.close()
    second = rotate_keystore(keys, now=now + dt.timedelta(days=1))
    assert second.current_id != first.current_id
    writer = open_message_log_writer(db, settings)
    try:
        await writer.write([entry(QUIET, LogSide.CLIENT_PROXY, now, writer.mode)])
    finally:
        await writer.close()
    stored = await rows(db)
    old, new = stored["q-client-client-proxy"], stored["q-quiet-client-proxy"]
    assert old.message_key_id == first.current_id
    assert new.message_key_id == second.current_id
    keystore = load_keystore(keys)
    for row in (old, new):
        assert row.message is not None and b"secret" not in row.message
        aad = record_aad(row.query_id, row.direction, row.side, row.client)
        assert row.message_key_id is not None
        plain = keystore.decrypt(row.message_key_id, row.message, aad)
        assert plain == b"<secret>body</secret>"
    # A body moved onto another record, or altered, does not decrypt.
    assert old.message_key_id is not None and old.message is not None
    other = record_aad(new.query_id, new.direction, new.side, new.client)
    with pytest.raises(SecurityError) as info:
        keystore.decrypt(old.message_key_id, old.message, other)
    assert info.value.code == "LogDecryptionFailed"
    tampered = old.message[:-1] + bytes([old.message[-1] ^ 1])
    aad = record_aad(old.query_id, old.direction, old.side, old.client)
    with pytest.raises(SecurityError):
        keystore.decrypt(old.message_key_id, tampered, aad)
    with pytest.raises(SecurityError) as info:
        keystore.decrypt("gone", old.message, aad)
    assert info.value.code == "LogKeyNotFound"


def test_keystore_checks(tmp_path: Path, now: dt.datetime) -> None:
    path = tmp_path / "keys.json"
    create_keystore(path, now=now)
    with pytest.raises(Conflict):
        create_keystore(path, now=now)
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_keystore(path)
    path.chmod(0o600)
    doc = json.loads(path.read_text())
    doc["keys"][doc["current"]] = "c2hvcnQ="  # 5 bytes
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigurationError, match="32 bytes"):
        load_keystore(path)
    path.write_text("{not json")
    with pytest.raises(ConfigurationError, match="malformed"):
        load_keystore(path)
    with pytest.raises(ConfigurationError, match="Cannot read"):
        load_keystore(tmp_path / "missing.json")


async def test_retention_deletes_only_old_archived_records(
    db: Database, tmp_path: Path, now: dt.datetime
) -> None:
    write_config(tmp_path, "")
    writer = open_message_log_writer(db, load_ss_config(tmp_path).message_log)
    old = now - dt.timedelta(days=31)
    try:
        await writer.write(
            [
                entry(CONSUMER, LogSide.CLIENT_PROXY, old, writer.mode),
                entry(CONSUMER, LogSide.SERVER_PROXY, old, writer.mode),
                entry(QUIET, LogSide.CLIENT_PROXY, old, writer.mode),
                entry(QUIET, LogSide.SERVER_PROXY, now, writer.mode),
            ]
        )
    finally:
        await writer.close()
    async with db.transaction() as session:
        stamp = MessageTimestamp(
            token_der=b"t", gen_time=old, tsa_url="http://tsa", created_at=old
        )
        session.add(stamp)
        await session.flush()
        await session.execute(
            update(MessageLogRecord)
            .where(MessageLogRecord.query_id != "q-quiet-client-proxy")
            .values(archived=True, timestamp_id=stamp.id)
        )
    # Old and archived: deleted; old but not archived: kept; archived but
    # recent: kept. The time-stamp still covers the recent record.
    result = await delete_expired_records(db, keep_days=30, now=now, chunk=1)
    assert (result.records, result.timestamps) == (2, 0)
    assert set(await rows(db)) == {"q-quiet-client-proxy", "q-quiet-server-proxy"}
    later = now + dt.timedelta(days=31)
    result = await delete_expired_records(db, keep_days=30, now=later)
    assert (result.records, result.timestamps) == (1, 1)
    assert set(await rows(db)) == {"q-quiet-client-proxy"}
    async with db.transaction() as session:
        assert await session.scalar(select(func.count(MessageTimestamp.id))) == 0
