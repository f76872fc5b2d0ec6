"""``jplink central ...`` through the root command (CliRunner) and a real serve."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from central_server import member_requests
from central_server.config import load_central_config
from central_server.db import open_database
from jplink.cli import root
from tests.support.ports import free_port as _free_port

ROOT = Path(__file__).resolve().parents[3]


def _cli(*args: str) -> Result:
    result = CliRunner().invoke(root, ["central", *args], catch_exceptions=False)
    return result


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "central"
    result = _cli(
        "init",
        "--home",
        str(h),
        "--instance",
        "JP-TEST",
        "--member-class",
        "COM=Companies",
        "--member-class",
        "GOV=Government",
    )
    assert result.exit_code == 0, result.output
    return h


def test_init_prints_a_working_key_once_and_refuses_twice(home):
    assert (home / "central.toml").is_file()
    again = _cli(
        "init", "--home", str(home), "--instance", "X", "--member-class", "A=a"
    )
    assert again.exit_code == 1
    assert "Conflict: The central server is already initialised" in again.output
    listed = json.loads(_cli("api-key", "list", "--home", str(home)).output)
    assert [(k["name"], k["role"]) for k in listed] == [
        ("admin", "system-administrator")
    ]


def test_member_request_approval_from_the_cli(home):
    async def submit() -> member_requests.SubmittedRequest:
        db = await open_database(load_central_config(home).db_url)
        try:
            return await member_requests.submit_member_request(
                db,
                admin_email="a@acme.example.jp",
                organisation_name="Acme",
                member_class="COM",
                requested_code="1234",
                now=dt.datetime.now(dt.UTC),
            )
        finally:
            await db.dispose()

    sub = asyncio.run(submit())
    pending = json.loads(
        _cli("requests", "list", "--home", str(home), "--status", "pending").output
    )
    assert [r["id"] for r in pending] == [sub.id]
    out = _cli("requests", "approve", "member", str(sub.id), "--home", str(home))
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["id"] == "MEMBER:JP-TEST/COM/1234"
    again = _cli("requests", "approve", "member", str(sub.id), "--home", str(home))
    assert again.exit_code == 1 and "Conflict" in again.output
    members = json.loads(_cli("members", "list", "--home", str(home)).output)
    assert [m["id"] for m in members] == ["MEMBER:JP-TEST/COM/1234"]
    declined = _cli(
        "requests", "decline", "certificate", "99", "--home", str(home), "--reason", "x"
    )
    assert declined.exit_code == 1 and "NotFound" in declined.output
    no_ca = _cli("requests", "approve", "certificate", "1", "--home", str(home))
    assert no_ca.exit_code == 1 and "No CA is configured" in no_ca.output


def test_api_key_create_and_revoke(home):
    out = _cli(
        "api-key",
        "create",
        "--home",
        str(home),
        "--name",
        "bob",
        "--role",
        "security-officer",
    )
    assert out.exit_code == 0, out.output
    key_id = out.output.split()[2]
    assert _cli("api-key", "revoke", key_id, "--home", str(home)).exit_code == 0
    again = _cli("api-key", "revoke", key_id, "--home", str(home))
    assert again.exit_code == 1 and "already revoked" in again.output
    bad_role = _cli(
        "api-key", "create", "--home", str(home), "--name", "x", "--role", "root"
    )
    assert bad_role.exit_code == 2


def test_strict_config_and_missing_home(tmp_path, home):
    (home / "central.toml").write_text('colour = "blue"\n')
    out = _cli("members", "list", "--home", str(home))
    assert out.exit_code == 1 and "unknown key(s) colour" in out.output
    out = _cli("servers", "list", "--home", str(tmp_path / "nothing"))
    assert out.exit_code == 1 and "does not exist" in out.output


def test_serve_answers_on_both_ports_and_stops_on_sigterm(home):
    admin_port, reg_port = _free_port(), _free_port()
    (home / "central.toml").write_text(
        f"[admin]\nport = {admin_port}\n[registration]\nport = {reg_port}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jplink.cli", "central", "serve", "--home", str(home)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{reg_port}/register/v1/member-classes", timeout=2
                ) as resp:
                    assert json.loads(resp.read()) == {
                        "COM": "Companies",
                        "GOV": "Government",
                    }
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(
                f"http://127.0.0.1:{admin_port}/api/v1/members", timeout=2
            )
        assert info.value.code == 401
        # systemctl stop: SIGTERM stops it cleanly (exit 0), not at once.
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, out[-2000:]
        assert b"SIGTERM received: stopping" in out, out[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
