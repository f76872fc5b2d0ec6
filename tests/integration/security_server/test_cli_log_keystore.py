"""``jplink ss log keystore create|rotate|list``: key ids, never key material.

Run through the root ``jplink`` command, so failures are checked as an
operator sees them (``Code: message``, exit status 1). Rotation must keep
every old key id decrypting: a record encrypted before the rotation still
exports (``jplink ss log export``) as a container our verifier accepts.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from jplink.asic import verify_asic_container
from jplink.cli import root
from security_server import logcrypt
from security_server.config import CONFIG_FILE
from security_server.db import open_database
from tests.integration.security_server.test_evidence import (
    World,
    make_world,
    soap,
)

from .admin.test_admin_log import encrypt_record


def jplink(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(root, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1, result.output
    return result


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "ss-home"
    home.mkdir()
    (home / CONFIG_FILE).write_text(
        '[message_log]\nencryption_keystore = "logkeys.json"\n'
    )
    return home


def listed(result: Result) -> dict[str, Any]:
    value = json.loads(result.output)
    assert isinstance(value, dict)
    return value


def assert_no_key_material(output: str, path: Path) -> None:
    for key in logcrypt.load_keystore(path).keys.values():
        assert base64.b64encode(key).decode() not in output
        assert key.hex() not in output


def test_create_rotate_list(home: Path) -> None:
    path = home / "logkeys.json"
    created = listed(jplink("ss", "log", "keystore", "create", "--home", str(home)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert created["keystore"] == str(path)
    (first,) = created["keys"]
    assert first["current"] and first["key_id"] == created["current"]
    born = dt.datetime.fromisoformat(first["created_at"])
    assert abs(dt.datetime.now(dt.UTC) - born) < dt.timedelta(minutes=5)
    assert logcrypt.load_keystore(path).current_id == first["key_id"]

    again = jplink("ss", "log", "keystore", "create", "--home", str(home), ok=False)
    assert "Conflict" in again.output and "rotate" in again.output

    rotated = listed(jplink("ss", "log", "keystore", "rotate", "--home", str(home)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ids = {k["key_id"] for k in rotated["keys"]}
    assert first["key_id"] in ids and len(ids) == 2
    assert rotated["current"] != first["key_id"]
    assert [k["key_id"] for k in rotated["keys"] if k["current"]] == [
        rotated["current"]
    ]

    shown = jplink("ss", "log", "keystore", "list", "--home", str(home))
    assert listed(shown) == rotated
    assert_no_key_material(shown.output, path)
    assert_no_key_material(json.dumps([created, rotated]), path)


def test_explicit_path_and_missing_configuration(tmp_path: Path) -> None:
    home = tmp_path / "plain"
    home.mkdir()
    (home / CONFIG_FILE).write_text("")
    failed = jplink("ss", "log", "keystore", "list", "--home", str(home), ok=False)
    assert "encryption_keystore" in failed.output
    path = tmp_path / "elsewhere.json"
    jplink("ss", "log", "keystore", "create", "--keystore", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    shown = listed(jplink("ss", "log", "keystore", "list", "--keystore", str(path)))
    assert len(shown["keys"]) == 1
    path.chmod(0o644)  # readable by others: refused, not used
    refused = jplink("ss", "log", "keystore", "list", "--keystore", str(path), ok=False)
    assert "InvalidConfiguration" in refused.output and "chmod 600" in refused.output
    missing = tmp_path / "none.json"
    jplink("ss", "log", "keystore", "rotate", "--keystore", str(missing), ok=False)
    assert not missing.exists()


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def test_rotation_keeps_old_ids_decrypting(
    home: Path, world: World, tmp_path: Path
) -> None:
    path = home / "logkeys.json"
    jplink("ss", "log", "keystore", "create", "--home", str(home))

    async def log_encrypted(query_id: str) -> int:
        db = await open_database(f"sqlite:///{home / 'ss.db'}")
        try:
            record_id = await world.log(db, query_id)
            await encrypt_record(db, logcrypt.load_keystore(path), record_id)
            await world.stamp_batch(db, [record_id])
            return record_id
        finally:
            await db.dispose()

    old = asyncio.run(log_encrypted("k-1"))
    first = logcrypt.load_keystore(path).current_id
    jplink("ss", "log", "keystore", "rotate", "--home", str(home))
    new = asyncio.run(log_encrypted("k-2"))
    assert logcrypt.load_keystore(path).current_id != first
    for record_id, query_id in ((old, "k-1"), (new, "k-2")):
        out = tmp_path / f"{query_id}.asice"
        jplink(
            "ss", "log", "export", str(record_id), "--home", str(home), "-o", str(out)
        )
        verified = verify_asic_container(out.read_bytes(), trust=world.trust)
        assert verified.message == soap(query_id)
