"""End to end with the real CA app: the central server forwards an approved CSR
to ``ca_tsa``'s enrolment API over HTTP and the requester downloads the
certificate, which openssl verifies against the CA's published chain.

Only tests may import two servers; the central server itself talks to the CA
through ``jplink.clients.ca`` over HTTP.
"""

from __future__ import annotations

import datetime as dt
import subprocess

import aiohttp
import pytest

ca_home = pytest.importorskip("ca_tsa.home")
ca_app = pytest.importorskip("ca_tsa.app")

from central_server import apikeys, registry  # noqa: E402
from central_server.apikeys import Role  # noqa: E402
from central_server.app import make_app, make_registration_app  # noqa: E402
from central_server.config import CaSettings, CentralConfig  # noqa: E402
from central_server.db import open_database  # noqa: E402
from tests.conftest import require_tool  # noqa: E402

from .conftest import CLASSES, INSTANCE  # noqa: E402
from .helpers import make_csr_pem  # noqa: E402


async def test_csr_issued_by_the_real_ca(aiohttp_server, aiohttp_client, tmp_path):
    now = dt.datetime.now(dt.UTC)
    ca_config = ca_home.init_ca_home(tmp_path / "ca", now=now - dt.timedelta(hours=1))
    ca_server = await aiohttp_server(ca_app.make_app(ca_config))
    key_file = tmp_path / "central" / "ca-api-key"
    key_file.parent.mkdir()
    key_file.write_text(ca_home.read_api_key(ca_config))
    key_file.chmod(0o600)
    config = CentralConfig(
        home=tmp_path / "central",
        ca=CaSettings(url=str(ca_server.make_url("/")), api_key_file=key_file),
    )
    db = await open_database(config.db_url)
    try:
        await registry.initialize(
            db, "t", instance=INSTANCE, member_classes=CLASSES, now=now
        )
        _i, officer = await apikeys.create_api_key(
            db, "t", name="ro", role=Role.REGISTRATION_OFFICER, now=now
        )
    finally:
        await db.dispose()
    admin = await aiohttp_client(make_app(config))
    public = await aiohttp_client(make_registration_app(config))
    auth = {"Authorization": f"Bearer {officer}"}

    resp = await public.post(
        "/register/v1/member-requests",
        json={
            "adminEmail": "it@acme.example.jp",
            "organisationName": "Acme Corp",
            "memberClass": "COM",
            "memberCode": "1234",
        },
    )
    mreq = await resp.json()
    resp = await admin.post(
        f"/api/v1/member-requests/{mreq['id']}/approve", headers=auth
    )
    assert resp.status == 200, await resp.text()

    resp = await public.post(
        "/register/v1/certificate-requests",
        json={
            "usage": "sign",
            "member": f"MEMBER:{INSTANCE}/COM/1234",
            "csr": make_csr_pem("1234", o="Acme Corp"),
        },
    )
    assert resp.status == 201, await resp.text()
    creq = await resp.json()
    resp = await admin.post(
        f"/api/v1/certificate-requests/{creq['id']}/approve", headers=auth
    )
    assert resp.status == 200, await resp.text()
    state = await (
        await public.get(
            f"/register/v1/certificate-requests/{creq['id']}",
            headers={"Authorization": f"Bearer {creq['token']}"},
        )
    ).json()
    assert state["status"] == "approved"

    async with (
        aiohttp.ClientSession() as session,
        session.get(ca_server.make_url("/api/v1/ca-certificates")) as r,
    ):
        chain = await r.json()
    (tmp_path / "chain.pem").write_text("".join(chain["chain"]) + chain["root"])
    (tmp_path / "cert.pem").write_text(state["certificate"])
    out = subprocess.run(
        [
            require_tool("openssl"),
            "verify",
            "-CAfile",
            str(tmp_path / "chain.pem"),
            str(tmp_path / "cert.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    subject = subprocess.run(
        [
            require_tool("openssl"),
            "x509",
            "-noout",
            "-subject",
            "-in",
            str(tmp_path / "cert.pem"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "O = Acme Corp" in subject and "CN = 1234" in subject
