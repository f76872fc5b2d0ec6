"""Registering services against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adapter_server.datasources import async_url
from adapter_server.definitions import ParameterSpec, ParamType, ServiceDefinition
from adapter_server.models import DataSourceRow
from jplink.errors import Conflict, InvalidRequest, NotFound

from .conftest import people_by_name


async def test_register_introspects_typed_columns(registry):
    stored = await registry.register(people_by_name())
    names = [c.name for c in stored.columns]
    assert names == ["id", "name", "born", "score", "active"]
    types = {c.name: c.type for c in stored.columns}
    assert types["id"] is ParamType.INTEGER
    assert types["name"] is ParamType.STRING
    assert await registry.get("peopleByName") == stored
    assert [s.code for s in await registry.list_services("DATA")] == ["peopleByName"]
    assert await registry.list_services("OTHER") == ()


async def test_declared_columns_win_and_must_match(registry):
    cols = (
        ("id", ParamType.INTEGER),
        ("name", ParamType.STRING),
        ("born", ParamType.DATE),
        ("score", ParamType.DECIMAL),
        ("active", ParamType.BOOLEAN),
    )
    from adapter_server.definitions import ColumnSpec

    svc = dataclasses.replace(
        people_by_name(), columns=tuple(ColumnSpec(n, t) for n, t in cols)
    )
    stored = await registry.register(svc)
    assert {c.name: c.type for c in stored.columns}["born"] is ParamType.DATE
    wrong = dataclasses.replace(svc, code="other", columns=svc.columns[:2])
    with pytest.raises(InvalidRequest) as err:
        await registry.register(wrong)
    assert err.value.code == "ColumnMismatch"


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELECT 1 AS a; DELETE FROM people", "exactly one statement"),
        ("DELETE FROM people WHERE name = :name", "read-only"),
        ("UPDATE people SET name = 'x' WHERE name = :name", "read-only"),
        (
            "WITH d AS (DELETE FROM people RETURNING id) SELECT id FROM d "
            "WHERE :name = 'x'",
            "DELETE",
        ),
    ],
)
async def test_refuses_writes_and_two_statements_in_read_only(registry, sql, needle):
    svc = dataclasses.replace(people_by_name(), sql=sql)
    with pytest.raises(InvalidRequest) as err:
        await registry.register(svc)
    assert err.value.code == "InvalidSql"
    assert needle in err.value.message
    with pytest.raises(NotFound):
        await registry.get("peopleByName")


async def test_parameter_mismatch_both_ways(registry):
    undeclared = dataclasses.replace(people_by_name(), parameters=())
    with pytest.raises(InvalidRequest, match="undeclared in SQL: name") as err:
        await registry.register(undeclared)
    assert err.value.code == "ParameterMismatch"
    extra = dataclasses.replace(
        people_by_name(),
        parameters=(
            *people_by_name().parameters,
            ParameterSpec("unused", ParamType.INTEGER),
        ),
    )
    with pytest.raises(InvalidRequest, match="declared but unused: unused"):
        await registry.register(extra)


async def test_preview_failure_is_clear_and_nothing_is_stored(registry):
    svc = dataclasses.replace(
        people_by_name(), sql="SELECT nosuchcolumn FROM people WHERE name = :name"
    )
    with pytest.raises(InvalidRequest) as err:
        await registry.register(svc)
    assert err.value.code == "PreviewFailed"
    assert "main" in err.value.message
    assert await registry.list_services() == ()


async def test_unnamed_result_column_is_refused(registry):
    svc = dataclasses.replace(
        people_by_name(), sql="SELECT id + 1 FROM people WHERE name = :name"
    )
    with pytest.raises(InvalidRequest, match="alias it with AS"):
        await registry.register(svc)


async def test_write_service_preview_is_rolled_back(registry, db_url):
    svc = ServiceDefinition(
        code="renamePerson",
        subsystem="DATA",
        datasource="main",
        sql="UPDATE people SET name = :new WHERE id = :id",
        parameters=(
            ParameterSpec("new", ParamType.STRING, sample="Changed"),
            ParameterSpec("id", ParamType.INTEGER, sample="1"),
        ),
        read_only=False,
    )
    stored = await registry.register(svc)
    assert [c.name for c in stored.columns] == ["rowcount"]
    engine = create_async_engine(async_url(db_url))
    async with engine.connect() as conn:
        name = await conn.scalar(text("SELECT name FROM people WHERE id = 1"))
    await engine.dispose()
    assert name == "Aiko"


async def test_duplicate_update_disable_delete(registry):
    await registry.register(people_by_name())
    with pytest.raises(Conflict):
        await registry.register(people_by_name())
    changed = dataclasses.replace(people_by_name(), title="New title", version="v2")
    await registry.register(changed, replace=True)
    got = await registry.get("peopleByName")
    assert (got.title, got.version) == ("New title", "v2")
    await registry.set_enabled("peopleByName", False)
    assert (await registry.get("peopleByName")).enabled is False
    with pytest.raises(Conflict):
        await registry.delete_datasource("main")
    await registry.delete("peopleByName")
    with pytest.raises(NotFound):
        await registry.delete("peopleByName")
    with pytest.raises(NotFound):
        await registry.register(people_by_name(), replace=True)


async def test_password_is_encrypted_at_rest_and_never_shown(registry, db_url):
    await registry.save_datasource(
        dataclasses.replace(
            (await registry.list_datasources())[0],
            name="secret",
            url="postgresql://reader:S3cret-pw@db.invalid/x",
        )
    )
    listed = {d.name: d for d in await registry.list_datasources()}
    assert "S3cret-pw" not in listed["secret"].url
    async with registry._db.transaction() as s:
        from sqlalchemy import select

        row = await s.scalar(
            select(DataSourceRow).where(DataSourceRow.name == "secret")
        )
        assert row.password_token and "S3cret-pw" not in row.password_token
        assert "S3cret-pw" not in row.url
    resolved = await registry.resolve("secret")
    assert resolved.password == "S3cret-pw"


async def test_export_import_round_trip(registry):
    await registry.register(people_by_name())
    doc = await registry.export_document()
    assert "password" not in str(doc)
    await registry.delete("peopleByName")
    assert await registry.import_document(doc) == ["peopleByName"]
    assert (await registry.get("peopleByName")).title == "People by name"
