"""Storage helpers on both SQLite and a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jplink.errors import StorageError
from jplink.storage import create_database, normalize_url
from jplink.storage.migrations import alembic_config


class _Base(DeclarativeBase):
    pass


class _Thing(_Base):
    __tablename__ = "thing"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p@h:5/d", "postgresql+asyncpg://u:p@h:5/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["mysql://u@h/d", "not a url", "oracle://x"])
def test_normalize_url_refuses(bad: str) -> None:
    with pytest.raises(StorageError):
        normalize_url(bad)


async def test_transaction_commits_and_rolls_back(db_url: str) -> None:
    db = create_database(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_Base.metadata.create_all)
        async with db.transaction() as s:
            s.add(_Thing(name="a"))
        # A failing transaction (unique violation) leaves nothing half-written
        # and surfaces as StorageError, not a driver exception.
        with pytest.raises(StorageError):
            async with db.transaction() as s:
                s.add(_Thing(name="b"))
                await s.flush()
                s.add(_Thing(name="a"))
                await s.flush()
        async with db.transaction() as s:
            names = (
                await s.execute(select(_Thing.name).order_by(_Thing.name))
            ).scalars()
            assert list(names) == ["a"]
    finally:
        await db.dispose()


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    db = create_database(f"sqlite:///{tmp_path / 'sub' / 'w.db'}")
    try:
        assert db.is_sqlite
        async with db.transaction() as s:
            mode = (await s.execute(text("PRAGMA journal_mode"))).scalar()
        assert mode == "wal"
    finally:
        await db.dispose()


def test_alembic_config_points_at_scripts(tmp_path: Path) -> None:
    cfg = alembic_config(tmp_path)
    assert cfg.get_main_option("script_location") == str(tmp_path)
