"""The API key form and table check shared by the components."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jplink.errors import Unauthenticated
from jplink.storage import Database, create_database, sqlite_url
from jplink.storage.apikeys import ApiKeyFormat, authenticate_api_key, find_api_key

KEYS = ApiKeyFormat("jpxx")


class _Base(DeclarativeBase):
    pass


class _Key(_Base):
    __tablename__ = "api_key"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )


def test_new_key_has_the_form_and_its_sha256() -> None:
    new = KEYS.new_key()
    prefix, key_id, secret = new.key.split("_", 2)
    assert prefix == "jpxx" and key_id == new.key_id
    assert len(key_id) == 16 and int(key_id, 16) >= 0
    assert len(secret) >= 43  # 256 bits, URL-safe base64
    assert new.key_hash == hashlib.sha256(new.key.encode()).hexdigest()
    assert KEYS.key_id_of(new.key) == new.key_id
    assert KEYS.new_key().key_id != new.key_id


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "jpss_0123456789abcdef_" + "a" * 43,  # another component's prefix
        "jpxx_0123456789ABCDEF_" + "a" * 43,  # upper-case id
        "jpxx_0123456789abcdef_" + "a" * 19,  # secret too short
        "jpxx_0123456789abcdef_" + "a" * 101,  # secret too long
        "jpxx_0123456789abcdef_" + "a" * 43 + "\n",
        "jpxx_0123456789abcdef_" + "a!" * 20,
    ],
)
def test_key_id_of_a_malformed_key_is_empty(presented: str) -> None:
    assert KEYS.key_id_of(presented) == ""


def test_minimum_secret_length_is_per_format() -> None:
    strict = ApiKeyFormat("jpxx", min_secret=40)
    key = "jpxx_0123456789abcdef_" + "a" * 39
    assert KEYS.key_id_of(key) == "0123456789abcdef"
    assert strict.key_id_of(key) == ""


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = create_database(sqlite_url(tmp_path / "keys.db"))
    async with database.engine.begin() as conn:
        await conn.run_sync(_Base.metadata.create_all)
    yield database
    await database.engine.dispose()


async def _store(db: Database, *, revoked: dt.datetime | None = None) -> str:
    new = KEYS.new_key()
    async with db.transaction() as session:
        session.add(_Key(key_id=new.key_id, key_hash=new.key_hash, revoked_at=revoked))
    return new.key


async def test_authenticate_returns_the_row_of_a_valid_key(db: Database) -> None:
    key = await _store(db)
    row = await authenticate_api_key(db, _Key, KEYS, key)
    assert row.key_id == KEYS.key_id_of(key)
    async with db.transaction() as session:
        found = await find_api_key(session, _Key, row.key_id)
        missing = await find_api_key(session, _Key, "0" * 16)
    assert found is not None and found.id == row.id
    assert missing is None


async def test_authenticate_refuses_wrong_unknown_malformed_revoked(
    db: Database, now: dt.datetime
) -> None:
    key = await _store(db)
    revoked = await _store(db, revoked=now)
    wrong = key[:-1] + ("b" if key[-1] != "b" else "c")
    unknown = KEYS.new_key().key
    messages = set()
    for presented in (wrong, unknown, "not-a-key", revoked):
        with pytest.raises(Unauthenticated) as info:
            await authenticate_api_key(db, _Key, KEYS, presented)
        messages.add(info.value.message)
    assert messages == {"The API key is not valid"}
