"""The shared audit trail and component-database opening, on SQLite and PostgreSQL.

A throw-away component (its own Base, an ``audit_log`` table built on
:class:`AuditLogColumns` and a one-revision Alembic directory written to
tmp_path) stands in for the servers.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import BigInteger, Integer, inspect, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jplink.cli_support import echo_json, home_option, run_with_database
from jplink.errors import StorageError
from jplink.storage import Database, open_component_database
from jplink.storage.audit import AuditLogColumns, AuditRecord, AuditTrail, aware


class _Base(DeclarativeBase):
    pass


class _Audit(AuditLogColumns, _Base):
    __tablename__ = "audit_log"
    # Redeclared as the security server does: 64-bit on PostgreSQL.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True
    )


_VERSION = '''
"""one table"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade():
    op.drop_table("audit_log")
'''


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """An Alembic script directory for the throw-away component."""
    where = tmp_path / "migrations"
    (where / "versions").mkdir(parents=True)
    (where / "script.py.mako").write_text("")
    (where / "env.py").write_text(
        "from jplink.storage.migrations import run_env\n"
        f"from {__name__} import _Base\n"
        "run_env(_Base.metadata)\n"
    )
    (where / "versions" / "0001_one.py").write_text(_VERSION)
    return where


async def _tables(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(lambda c: inspect(c).get_table_names())


async def test_open_component_database_migrates_to_head(
    db_url: str, migrations: Path
) -> None:
    db = await open_component_database(db_url, migrations)
    try:
        assert "audit_log" in await _tables(db)
        async with db.engine.connect() as conn:
            head = await conn.execute(text("select version_num from alembic_version"))
            assert head.scalar_one() == "0001"
    finally:
        await db.dispose()


async def test_open_component_database_refuses_a_bad_url(migrations: Path) -> None:
    with pytest.raises(StorageError):
        await open_component_database("mysql://u@h/d", migrations)


async def test_audit_trail_records_in_the_transaction_and_lists_newest_first(
    db_url: str, migrations: Path, now: dt.datetime
) -> None:
    trail = AuditTrail(_Audit)
    db = await open_component_database(db_url, migrations)
    try:
        async with db.transaction() as s:
            trail.record(
                s,
                actor="cli:a",
                action="thing.add",
                target="t1",
                now=now,
                detail={"b": 2, "a": dt.date(2024, 1, 2)},
            )
            trail.record(
                s,
                actor="cli:b",
                action="thing.remove",
                target="t1",
                now=now + dt.timedelta(seconds=1),
            )
        # A rolled-back change leaves no audit row.
        with pytest.raises(RuntimeError):
            async with db.transaction() as s:
                trail.record(s, actor="cli:c", action="x", target="y", now=now)
                await s.flush()
                raise RuntimeError("the change failed")

        rows = await trail.list_audit(db)
        assert [r.action for r in rows] == ["thing.remove", "thing.add"]
        assert rows[1] == AuditRecord(
            id=rows[1].id,
            at=now,
            actor="cli:a",
            action="thing.add",
            target="t1",
            detail={"a": "2024-01-02", "b": 2},
        )
        assert rows[0].detail == {}
        assert rows[0].at.tzinfo is not None
        assert [r.action for r in await trail.list_audit(db, limit=1)] == [
            "thing.remove"
        ]
        # The stored detail is sorted JSON text (stable for comparisons).
        async with db.transaction() as s:
            stored = (
                (await s.execute(select(_Audit.detail).where(_Audit.target == "t1")))
                .scalars()
                .all()
            )
        assert '{"a": "2024-01-02", "b": 2}' in stored
    finally:
        await db.dispose()


def test_aware_gives_naive_values_utc_and_keeps_aware_ones() -> None:
    naive = dt.datetime(2024, 5, 6, 7, 8, 9)
    assert aware(naive) == naive.replace(tzinfo=dt.UTC)
    tokyo = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert aware(tokyo) is tokyo


def test_run_with_database_runs_the_work_and_disposes(
    tmp_path: Path, migrations: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    seen: list[Database] = []

    async def work(db: Database) -> list[str]:
        seen.append(db)
        return await _tables(db)

    assert "audit_log" in run_with_database(url, migrations, work)

    async def fail(db: Database) -> None:
        seen.append(db)
        raise StorageError("boom")

    with pytest.raises(StorageError, match="boom"):
        run_with_database(url, migrations, fail)
    # Both engines were disposed: their pools keep no idle connection (an
    # engine still in use would keep the one the work returned).
    assert [db.engine.pool.checkedin() for db in seen] == [0, 0]


def test_home_option_and_echo_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @click.command()
    @home_option("central")
    @click.option("--sorted", "sort", is_flag=True)
    def show(home: Path | None, sort: bool) -> None:
        echo_json({"home": str(home), "z": "東京", "a": 1}, sort_keys=sort)

    runner = CliRunner()
    help_text = runner.invoke(show, ["--help"]).output
    assert "$JPLINK_CENTRAL_HOME" in help_text and "$JPLINK_HOME/central" in help_text
    out = runner.invoke(show, ["--home", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"home": str(tmp_path), "z": "東京", "a": 1}
    assert "東京" in out.output and out.output.startswith('{\n  "home"')
    out = runner.invoke(show, ["--sorted"])
    assert out.output.startswith('{\n  "a": 1')
    assert json.loads(out.output)["home"] == "None"
