"""Fixtures: an adapter store and a seeded data-source database (SQLite and PG)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adapter_server.app import make_app
from adapter_server.config import load_adapter_config
from adapter_server.datasources import DataSourcePool, async_url
from adapter_server.definitions import (
    ColumnSpec,
    DataSourceDefinition,
    ParameterSpec,
    ParamType,
    ServiceDefinition,
)
from adapter_server.registry import Registry
from adapter_server.store import MIGRATIONS, open_registry
from adapter_server.vault import PasswordVault, create_key_file
from jplink.storage import create_database, upgrade_database

PEOPLE = [
    (1, "Aiko", dt.date(1990, 4, 1), Decimal("12.50"), True),
    (2, "Botan", dt.date(1985, 12, 24), Decimal("7.25"), False),
    (3, "Chiyo", dt.date(2001, 7, 7), Decimal("99.99"), True),
    (4, "O'Hara", dt.date(1970, 1, 1), Decimal("0.00"), False),
]


async def seed(url: str) -> None:
    """Create and fill the ``people`` table the test services query."""
    engine = create_async_engine(async_url(url))
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TABLE people (id INTEGER PRIMARY KEY,"
                " name VARCHAR(50) NOT NULL, born DATE NOT NULL,"
                " score NUMERIC(10, 2) NOT NULL,"
                " active BOOLEAN NOT NULL)"
            )
        )
        await conn.execute(text("CREATE INDEX people_name ON people (name)"))
        for pid, name, born, score, active in PEOPLE:
            await conn.execute(
                text("INSERT INTO people VALUES (:i, :n, :b, :s, :a)"),
                {
                    "i": pid,
                    "n": name,
                    "b": born if "postgresql" in url else born.isoformat(),
                    "s": score if "postgresql" in url else float(score),
                    "a": active,
                },
            )
    await engine.dispose()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "datasource.key"
    create_key_file(path)
    return path


@pytest.fixture
async def registry(db_url: str, key_file: Path) -> AsyncIterator[Registry]:
    """A registry on a migrated store, with data source ``main`` seeded."""
    await seed(db_url)
    db = create_database(db_url)
    await upgrade_database(db, MIGRATIONS)
    pool = DataSourcePool()
    reg = Registry(db, PasswordVault.from_file(key_file), pool, actor="cli")
    await reg.save_datasource(DataSourceDefinition("main", db_url, query_timeout=2.0))
    yield reg
    await pool.close()
    await db.dispose()


PEOPLE_COLUMNS = (
    ColumnSpec("id", ParamType.INTEGER),
    ColumnSpec("name", ParamType.STRING),
    ColumnSpec("born", ParamType.DATE),
    ColumnSpec("score", ParamType.DECIMAL),
    ColumnSpec("active", ParamType.BOOLEAN),
)


def people_by_name(*, typed: bool = False) -> ServiceDefinition:
    """A read-only service with one string parameter.

    Args:
        typed: declare the column types (SQLite cannot report DATE/NUMERIC).
    """
    return ServiceDefinition(
        columns=PEOPLE_COLUMNS if typed else (),
        code="peopleByName",
        subsystem="DATA",
        datasource="main",
        title="People by name",
        notes="Exact match on the name",
        sql="SELECT id, name, born, score, active FROM people WHERE name = :name "
        "ORDER BY id",
        parameters=(
            ParameterSpec("name", ParamType.STRING, max_length=50, sample="Aiko"),
        ),
    )


SEARCH = ServiceDefinition(
    code="searchPeople",
    subsystem="DATA",
    datasource="main",
    title="Search people",
    version="v2",
    sql="SELECT id, name, born, score, active FROM people "
    "WHERE id >= :minId AND score >= :minScore AND active = :active "
    "AND born >= :bornAfter AND name <> :notName ORDER BY id",
    parameters=(
        ParameterSpec("minId", ParamType.INTEGER, sample="1"),
        ParameterSpec("minScore", ParamType.DECIMAL, required=False, default="0"),
        ParameterSpec("active", ParamType.BOOLEAN, sample="true"),
        ParameterSpec("bornAfter", ParamType.DATE, sample="1900-01-01"),
        ParameterSpec("notName", ParamType.STRING, required=False, default="-"),
    ),
    columns=PEOPLE_COLUMNS,
    max_rows=2,
)
ALL = ServiceDefinition(
    code="allPeople",
    subsystem="DATA",
    datasource="main",
    sql="SELECT id FROM people ORDER BY id",
    max_rows=2,
)
SLOW = ServiceDefinition(
    code="slow",
    subsystem="DATA",
    datasource="slowdb",
    sql="SELECT 1 AS x FROM pg_sleep(:seconds)",
    parameters=(ParameterSpec("seconds", ParamType.DECIMAL, sample="0"),),
)
SINCE = ServiceDefinition(
    code="bornBefore",
    subsystem="DATA",
    datasource="main",
    sql="SELECT id FROM people WHERE born < :t ORDER BY id",
    parameters=(ParameterSpec("t", ParamType.DATETIME, sample="2000-01-01T00:00:00"),),
)


@pytest.fixture
async def adapter(aiohttp_client, db_url, tmp_path: Path):
    """The adapter app (test client) with the services above registered."""
    await seed(db_url)
    (tmp_path / "adapter.toml").write_text(f'database_url = "{db_url}"\n')
    config = load_adapter_config(tmp_path)
    assert config.secret_key_file.is_relative_to(tmp_path)
    create_key_file(config.secret_key_file)
    async with open_registry(config) as registry:
        await registry.save_datasource(
            DataSourceDefinition("main", db_url, query_timeout=2.0)
        )
        for svc in (people_by_name(typed=True), SEARCH, SINCE, ALL):
            await registry.register(svc)
        await registry.save_datasource(DataSourceDefinition("gone", db_url))
        gone = dataclasses.replace(
            people_by_name(typed=True), code="gone", datasource="gone"
        )
        await registry.register(gone)
        # The database goes away after registration.
        await registry.save_datasource(
            DataSourceDefinition(
                "gone", "postgresql://nobody@127.0.0.1:1/none", connect_timeout=1
            )
        )
        if db_url.startswith("postgresql"):
            await registry.save_datasource(
                DataSourceDefinition("slowdb", db_url, query_timeout=0.5)
            )
            await registry.register(SLOW)
    return await aiohttp_client(make_app(config))


@pytest.fixture
async def admin(aiohttp_client, db_url, tmp_path: Path):
    """(test client, admin API key) of an adapter with data source ``main``.

    The ``people`` table is seeded; no service is registered yet.
    """
    from adapter_server.apikeys import create_api_key

    await seed(db_url)
    (tmp_path / "adapter.toml").write_text(
        f'database_url = "{db_url}"\ncatalog_refresh_seconds = 3600\n'
    )
    config = load_adapter_config(tmp_path)
    create_key_file(config.secret_key_file)
    _, key = create_api_key(config.admin_api_key_file, "tests")
    async with open_registry(config) as registry:
        await registry.save_datasource(
            DataSourceDefinition("main", db_url, query_timeout=5.0)
        )
    client = await aiohttp_client(make_app(config))
    return client, key
