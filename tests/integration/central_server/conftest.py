"""Fixtures: a migrated, initialised central-server database; the real CA.

Also the registration steps the end-to-end tests share: a member-code request
and a certificate request, each submitted on the public endpoint and approved
through the admin API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from central_server import apikeys, registry
from central_server.config import CaSettings
from central_server.db import open_database
from jplink.storage import Database

INSTANCE = "JP-TEST"
CLASSES = {"COM": "Companies", "GOV": "Government"}


@pytest.fixture
async def db(db_url: str, now: dt.datetime) -> AsyncIterator[Database]:
    """An initialised registry on SQLite and on PostgreSQL."""
    database = await open_database(db_url)
    try:
        await registry.initialize(
            database, "test", instance=INSTANCE, member_classes=CLASSES, now=now
        )
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def sqlite_db(tmp_path: Path, now: dt.datetime) -> AsyncIterator[Database]:
    """An initialised registry on SQLite only (for slower, HTTP-level tests)."""
    database = await open_database(f"sqlite:///{tmp_path / 'central.db'}")
    try:
        await registry.initialize(
            database, "test", instance=INSTANCE, member_classes=CLASSES, now=now
        )
        yield database
    finally:
        await database.dispose()


@dataclass(frozen=True)
class RealCa:
    """The ``ca_tsa`` app on a test server and the settings that reach it."""

    server: TestServer
    settings: CaSettings


@pytest.fixture
async def real_ca(aiohttp_server: Any, tmp_path: Path) -> RealCa:
    """A fresh CA home served over HTTP; its API key in ``central/ca-api-key``.

    Skips when the CA component is not installed (only tests import two
    servers).
    """
    ca_home = pytest.importorskip("ca_tsa.home")
    ca_app = pytest.importorskip("ca_tsa.app")
    now = dt.datetime.now(dt.UTC)
    ca_config = ca_home.init_ca_home(tmp_path / "ca", now=now - dt.timedelta(hours=1))
    server = await aiohttp_server(ca_app.make_app(ca_config))
    key_file = tmp_path / "central" / "ca-api-key"
    key_file.parent.mkdir()
    key_file.write_text(ca_home.read_api_key(ca_config))
    key_file.chmod(0o600)
    return RealCa(
        server, CaSettings(url=str(server.make_url("/")), api_key_file=key_file)
    )


async def init_with_officer(db: Database, now: dt.datetime) -> dict[str, str]:
    """Initialise the registry; the headers of a new registration officer."""
    await registry.initialize(
        db, "t", instance=INSTANCE, member_classes=CLASSES, now=now
    )
    _info, key = await apikeys.create_api_key(
        db, "t", name="ro", role=apikeys.Role.REGISTRATION_OFFICER, now=now
    )
    return {"Authorization": f"Bearer {key}"}


async def approve_member_request(
    public: TestClient[Any, Any],
    admin: TestClient[Any, Any],
    auth: dict[str, str],
    *,
    code: str = "1234",
    name: str = "Acme Corp",
) -> None:
    """Request member code ``COM/<code>`` publicly and approve it."""
    resp = await public.post(
        "/register/v1/member-requests",
        json={
            "adminEmail": "it@acme.example.jp",
            "organisationName": name,
            "memberClass": "COM",
            "memberCode": code,
        },
    )
    assert resp.status == 201, await resp.text()
    request = await resp.json()
    resp = await admin.post(
        f"/api/v1/member-requests/{request['id']}/approve", headers=auth
    )
    assert resp.status == 200, await resp.text()


async def approve_certificate_request(
    public: TestClient[Any, Any],
    admin: TestClient[Any, Any],
    auth: dict[str, str],
    request: dict[str, str],
) -> dict[str, Any]:
    """Submit a certificate request, approve it, return the requester's view."""
    resp = await public.post("/register/v1/certificate-requests", json=request)
    assert resp.status == 201, await resp.text()
    submitted = await resp.json()
    resp = await admin.post(
        f"/api/v1/certificate-requests/{submitted['id']}/approve", headers=auth
    )
    assert resp.status == 200, await resp.text()
    state: dict[str, Any] = await (
        await public.get(
            f"/register/v1/certificate-requests/{submitted['id']}",
            headers={"Authorization": f"Bearer {submitted['token']}"},
        )
    ).json()
    assert state["status"] == "approved"
    return state
