"""``jplink adapter ...`` through the real root command (click's CliRunner)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapter_server.apikeys import ApiKeyStore
from adapter_server.config import load_adapter_config
from adapter_server.portable import service_to_dict
from jplink.cli import root

from .conftest import people_by_name, seed

PEOPLE_TOML = """
code = "peopleByName"
subsystem = "DATA"
datasource = "main"
title = "People by name"
sql = "SELECT id, name, born, score, active FROM people WHERE name = :name"

[[parameters]]
name = "name"
type = "string"
sample = "Aiko"

[[columns]]
name = "id"
type = "integer"
[[columns]]
name = "name"
type = "string"
[[columns]]
name = "born"
type = "date"
[[columns]]
name = "score"
type = "decimal"
[[columns]]
name = "active"
type = "boolean"
"""


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(root, ["adapter", *args], input=input)


def ok(*args: str, input: str | None = None) -> str:
    result = run(*args, input=input)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def home(tmp_path: Path) -> str:
    path = tmp_path / "adapter"
    ok("init", "--home", str(path), "--port", "18555")
    return str(path)


@pytest.fixture
def people_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'people.db'}"
    asyncio.run(seed(url))
    return url


def test_init_writes_config_and_prints_the_key_once(tmp_path):
    path = tmp_path / "adapter"
    out = ok("init", "--home", str(path), "--port", "18556")
    key = out.strip().splitlines()[-1]
    config = load_adapter_config(path)
    assert config.port == 18556
    assert config.public_url == "http://127.0.0.1:18556"
    assert config.secret_key_file.stat().st_mode & 0o077 == 0
    assert key not in config.admin_api_key_file.read_text()
    assert ApiKeyStore(config.admin_api_key_file).authenticate(key).name == "initial"
    # The key is never shown again.
    assert key not in ok("apikey", "list", "--home", str(path))
    again = run("init", "--home", str(path))
    assert again.exit_code == 1
    assert "InvalidConfiguration" in again.output and "already" in again.output
    assert "Traceback" not in again.output


def test_apikey_create_list_revoke(home):
    out = ok("apikey", "create", "--home", home, "--name", "ci")
    key = out.strip().splitlines()[-1]
    listed = ok("apikey", "list", "--home", home)
    key_id = key.split("_")[1]
    assert f"{key_id}  ci" in listed
    ok("apikey", "revoke", "--home", home, key_id)
    assert key_id not in ok("apikey", "list", "--home", home)
    missing = run("apikey", "revoke", "--home", home, key_id)
    assert missing.exit_code == 1 and "NotFound" in missing.output


def test_datasource_commands(home, people_db, tmp_path):
    ok("datasource", "add", "--home", home, "main", people_db)
    pw = tmp_path / "pw"
    pw.write_text("V3ry-Secret-pw\n")
    ok("datasource", "add", "--home", home, "down",
       "postgresql://someone@127.0.0.1:1/x", "--password-file", str(pw),
       "--connect-timeout", "2")  # fmt: skip
    ok("datasource", "add", "--home", home, "asked",
       "postgresql://someone@127.0.0.1:1/y", "--ask-password",
       input="Prompted-Secret\n")  # fmt: skip
    listed = json.loads(ok("datasource", "list", "--home", home))
    assert [d["name"] for d in listed] == ["asked", "down", "main"]
    assert "V3ry-Secret-pw" not in str(listed)
    assert "Prompted-Secret" not in str(listed)
    assert "reachable" in ok("datasource", "test", "--home", home, "main")
    bad = run("datasource", "test", "--home", home, "down")
    assert bad.exit_code == 1
    assert "DatabaseUnavailable: Data source 'down' is not reachable" in bad.output
    assert "V3ry-Secret-pw" not in bad.output and "Errno" not in bad.output
    ok("datasource", "delete", "--home", home, "down")
    gone = run("datasource", "test", "--home", home, "down")
    assert gone.exit_code == 1 and "NotFound" in gone.output


def test_service_lifecycle(home, people_db, tmp_path):
    ok("datasource", "add", "--home", home, "main", people_db)
    definition = service_to_dict(people_by_name(typed=True))
    toml_file = tmp_path / "people.toml"
    toml_file.write_text(PEOPLE_TOML)
    out = ok("service", "register", "--home", home, str(toml_file))
    assert "Registered peopleByName (5 columns)" in out
    dupe = run("service", "register", "--home", home, str(toml_file))
    assert dupe.exit_code == 1 and "Conflict" in dupe.output

    json_file = tmp_path / "people.json"
    json_file.write_text(json.dumps({**definition, "title": "名前で検索"}))
    ok("service", "update", "--home", home, str(json_file))
    shown = json.loads(ok("service", "show", "--home", home, "peopleByName"))
    assert shown["title"] == "名前で検索"
    assert [c["name"] for c in shown["columns"]][:2] == ["id", "name"]

    ok("service", "disable", "--home", home, "peopleByName")
    assert "\tdisabled\t" in ok("service", "list", "--home", home)
    ok("service", "enable", "--home", home, "peopleByName")
    assert "\tenabled\t" in ok("service", "list", "--home", home, "--subsystem", "DATA")
    assert ok("service", "list", "--home", home, "--subsystem", "NONE") == ""

    export = tmp_path / "export.toml"
    ok("service", "export", "--home", home, "-o", str(export))
    document = tomllib.loads(export.read_text())
    assert [s["code"] for s in document["services"]] == ["peopleByName"]
    as_json = json.loads(ok("service", "export", "--home", home, "--format", "json"))
    assert as_json == document

    ok("service", "delete", "--home", home, "peopleByName")
    missing = run("service", "show", "--home", home, "peopleByName")
    assert missing.exit_code == 1 and "NotFound" in missing.output
    assert "peopleByName" in ok("service", "import", "--home", home, str(export))
    assert json.loads(ok("service", "show", "--home", home, "peopleByName"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("code = [", "not valid TOML"),
        ('code = "x"\n', "missing required key"),
        ('format = "jplink-adapter/1"\n', "use import"),
        ('code = "a"\nsubsystem = "S"\ndatasource = "main"\n'
         'sql = "DELETE FROM people"\n', "InvalidSql"),
    ],
)  # fmt: skip
def test_bad_service_files_give_clear_errors(
    home, people_db, tmp_path, content, message
):
    ok("datasource", "add", "--home", home, "main", people_db)
    path = tmp_path / "svc.toml"
    path.write_text(content)
    result = run("service", "register", "--home", home, str(path))
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_sample_creates_database_and_two_services(home):
    out = ok("sample", "--home", home)
    assert "municipalityByCode" in out and "municipalitiesByPrefecture" in out
    with sqlite3.connect(Path(home) / "sample.db") as conn:
        rows = conn.execute(
            "SELECT name, population FROM municipality WHERE code = '131016'"
        ).fetchall()
    conn.close()
    assert rows == [("千代田区", 66680)]
    shown = json.loads(ok("service", "show", "--home", home, "municipalityByCode"))
    assert shown["subsystem"] == "MUNICIPALITY"
    assert {c["name"]: c["type"] for c in shown["columns"]}["area_km2"] == "decimal"
    # Running it again replaces rather than fails.
    ok("sample", "--home", home)
    assert len(ok("service", "list", "--home", home).splitlines()) == 2


def test_commands_without_init_explain_what_to_do(tmp_path):
    result = run("service", "list", "--home", str(tmp_path / "empty"))
    assert result.exit_code == 1
    assert "jplink adapter init" in result.output


def test_audit_records_cli_changes_and_api_keys(home, people_db):
    ok("datasource", "add", "--home", home, "main", people_db)
    out = ok("apikey", "create", "--home", home, "--name", "ci")
    key_id = out.strip().splitlines()[-1].split("_")[1]
    ok("apikey", "revoke", "--home", home, key_id)
    failed = run("apikey", "revoke", "--home", home, key_id)
    assert failed.exit_code == 1 and "NotFound" in failed.output
    lines = ok("audit", "--home", home).splitlines()
    rows = [line.split("\t") for line in lines]
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("cli", "apikey.revoke", key_id),
        ("cli", "apikey.create", "ci"),
        ("cli", "datasource.save", "main"),
        ("cli", "apikey.create", "initial"),
    ]
    entries = json.loads(ok("audit", "--home", home, "--json", "--limit", "2"))
    assert [e["action"] for e in entries] == ["apikey.revoke", "apikey.create"]
    assert entries[1]["detail"] == {"key_id": key_id}
    assert "jpad_" not in ok("audit", "--home", home, "--json")
    assert run("audit", "--home", home, "--limit", "0").exit_code == 2


def test_key_not_created_when_audit_cannot_be_written(home):
    # A store that cannot take the audit entry: the key file stays unchanged.
    config = load_adapter_config(Path(home))
    before = config.admin_api_key_file.read_text()
    with sqlite3.connect(Path(home) / "adapter.db") as conn:
        conn.execute("DROP TABLE adapter_audit")
    conn.close()
    result = run("apikey", "create", "--home", home, "--name", "late")
    assert result.exit_code == 1
    assert "DatabaseError" in result.output and "Traceback" not in result.output
    assert config.admin_api_key_file.read_text() == before
