"""Definitions validate names and limits; SQL is checked statically."""

from __future__ import annotations

import os
import stat
from decimal import Decimal

import pytest

from adapter_server.definitions import (
    ColumnSpec,
    DataSourceDefinition,
    ParameterSpec,
    ParamType,
    ServiceDefinition,
)
from adapter_server.portable import (
    dump_json,
    dump_toml,
    load_document,
    service_from_dict,
    service_to_dict,
)
from adapter_server.sqltext import check_sql, placeholder_names
from adapter_server.vault import PasswordVault, create_key_file
from jplink.errors import ConfigurationError, InvalidRequest, StorageError


@pytest.mark.parametrize(
    "name", ["", "1abc", "a-b", "a b", "xmlThing", "row", "a" * 64, "名前", "a:b"]
)
def test_bad_parameter_names(name):
    with pytest.raises(InvalidRequest) as err:
        ParameterSpec(name, ParamType.STRING)
    assert err.value.code == "InvalidName"


@pytest.mark.parametrize("code", ["", "1x", "get/x", "a b", "x" * 101, "get:x"])
def test_bad_service_codes(code):
    with pytest.raises(InvalidRequest):
        ServiceDefinition(code, "SUB", "main", "SELECT 1")


def test_limits_are_checked():
    with pytest.raises(InvalidRequest, match="required"):
        ParameterSpec("a", ParamType.INTEGER, default="1")
    with pytest.raises(InvalidRequest, match="strings only"):
        ParameterSpec("a", ParamType.INTEGER, max_length=3)
    with pytest.raises(InvalidRequest, match="minimum is above"):
        ParameterSpec("a", ParamType.INTEGER, minimum=Decimal(5), maximum=Decimal(1))
    with pytest.raises(InvalidRequest, match="Duplicate"):
        ServiceDefinition(
            "s",
            "SUB",
            "main",
            "SELECT 1",
            columns=(ColumnSpec("a", ParamType.STRING),) * 2,
        )
    with pytest.raises(InvalidRequest):
        DataSourceDefinition("main", "sqlite://", pool_size=0)


def test_placeholders_follow_sqlalchemy_text_rule():
    sql = "SELECT a::text FROM t WHERE b = :b AND c = :c AND d = :b AND e = '\\:x'"
    assert placeholder_names(sql) == ("b", "c")


def test_check_sql_strips_comments_and_semicolon():
    checked = check_sql(
        "SELECT a FROM t WHERE b = :b -- trailing :z\n;", read_only=True
    )
    assert checked.sql == "SELECT a FROM t WHERE b = :b"
    assert checked.placeholders == ("b",)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; SELECT 2",
        "DROP TABLE t",
        "SELECT * INTO t2 FROM t",
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "PRAGMA writable_schema = 1",
        "",
    ],
)
def test_check_sql_refuses_in_read_only(sql):
    with pytest.raises(InvalidRequest) as err:
        check_sql(sql, read_only=True)
    assert err.value.code == "InvalidSql"


def test_write_service_allows_one_dml_statement_only():
    assert check_sql("DELETE FROM t WHERE id = :id", read_only=False).kind == "DELETE"
    with pytest.raises(InvalidRequest):
        check_sql("DROP TABLE t", read_only=False)
    with pytest.raises(InvalidRequest):
        check_sql("DELETE FROM t; DELETE FROM u", read_only=False)


def _service():
    return ServiceDefinition(
        "getPeople",
        "DATA",
        "main",
        "SELECT id FROM people WHERE name = :name",
        title='Title with "quotes" and 日本語',
        notes="line1\nline2",
        parameters=(
            ParameterSpec("name", ParamType.STRING, max_length=20, sample="Aiko"),
            ParameterSpec(
                "n", ParamType.DECIMAL, required=False, default="1.5",
                minimum=Decimal("0"), maximum=Decimal("10.5"),
            ),
        ),
        columns=(ColumnSpec("id", ParamType.INTEGER),),
    )  # fmt: skip


@pytest.mark.parametrize(("dump", "fmt"), [(dump_toml, "toml"), (dump_json, "json")])
def test_export_document_round_trips(dump, fmt):
    doc = {"format": "jplink-adapter/1", "services": [service_to_dict(_service())]}
    loaded = load_document(dump(doc), fmt)
    assert service_from_dict(loaded["services"][0]) == _service()


def test_import_is_strict():
    data = service_to_dict(_service())
    with pytest.raises(InvalidRequest, match="unknown key"):
        service_from_dict({**data, "sqll": "x"})
    with pytest.raises(InvalidRequest, match="wrong type"):
        service_from_dict({**data, "max_rows": "10"})
    with pytest.raises(InvalidRequest, match="unknown type"):
        service_from_dict({**data, "parameters": [{"name": "name", "type": "varchar"}]})
    with pytest.raises(InvalidRequest, match="not a jplink-adapter/1"):
        load_document('{"services": []}', "json")


def test_vault_round_trip_and_key_file_rules(tmp_path):
    key = tmp_path / "k"
    create_key_file(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with pytest.raises(ConfigurationError):
        create_key_file(key)
    vault = PasswordVault.from_file(key)
    # Long enough that random base64 never contains it by chance (a two
    # letter secret turned up inside a Fernet token about once in 40 runs).
    secret = "correct-horse-battery-staple"
    token = vault.encrypt(secret)
    assert secret not in token and vault.decrypt(token) == secret
    other = tmp_path / "k2"
    create_key_file(other)
    with pytest.raises(StorageError) as err:
        PasswordVault.from_file(other).decrypt(token)
    assert err.value.code == "SecretUnreadable"
    os.chmod(key, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        PasswordVault.from_file(key)
    with pytest.raises(ConfigurationError):
        PasswordVault.from_file(tmp_path / "missing")
