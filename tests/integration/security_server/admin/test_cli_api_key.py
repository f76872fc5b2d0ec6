"""``jplink ss api-key create|list|revoke`` and the key ``jplink ss init`` prints;
each printed key is then used against the admin API."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner, Result

from jplink.cli import root
from security_server.admin import make_admin_app
from security_server.config import load_ss_config

from ..helpers import make_anchor


def _ss(home: Path, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(root, ["ss", *args, "--home", str(home)])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _status(home: Path, key: str) -> int:
    """GET /api/v1/status with ``key`` on a fresh app over the home's database."""

    async def call() -> int:
        app = make_admin_app(load_ss_config(home))
        async with TestClient(TestServer(app)) as client:
            resp = await client.get(
                "/api/v1/status", headers={"Authorization": f"Bearer {key}"}
            )
            return resp.status

    return asyncio.run(call())


def test_api_key_commands(tmp_path: Path, now: dt.datetime) -> None:
    # Synchronous: the CLI runs its own event loop.
    home = tmp_path / "ss"
    anchor = tmp_path / "anchor.xml"
    anchor.write_bytes(make_anchor(now))
    out = _ss(
        home, "init", "--anchor", str(anchor), "--owner", "MEMBER:JP-TEST/COM/1111",
        "--owner-name", "Consumer Ltd", "--server-code", "ss1",
    ).output.splitlines()  # fmt: skip
    assert out[-2] == "System administrator API key (shown once, store it now):"
    admin_key = out[-1]
    assert admin_key.startswith("jpss_")
    assert _status(home, admin_key) == 200

    made = _ss(
        home, "api-key", "create", "--name", "ops", "--role", "auditor",
        "--role", "service-administrator",
    ).output.splitlines()  # fmt: skip
    assert made[0].endswith("(auditor, service-administrator), shown once:")
    key = made[1]
    key_id = key.split("_")[1]
    listed = json.loads(_ss(home, "api-key", "list").output)
    assert [(k["name"], k["roles"]) for k in listed] == [
        ("admin", ["system-administrator"]),
        ("ops", ["auditor", "service-administrator"]),
    ]
    assert all("key_hash" not in k and "key" not in k for k in listed)
    assert key not in _ss(home, "api-key", "list").output
    assert _status(home, key) == 200
    assert _ss(home, "api-key", "revoke", key_id).output.strip() == (
        f"Revoked API key {key_id}"
    )
    assert _status(home, key) == 401

    bad = _ss(home, "api-key", "create", "--name", "x", "--role", "root", ok=False)
    assert bad.exit_code != 0 and "root" in bad.output
    again = _ss(home, "api-key", "revoke", key_id, ok=False)
    assert again.exit_code != 0 and "already revoked" in again.output
