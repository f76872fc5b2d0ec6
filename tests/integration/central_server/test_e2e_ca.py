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

from central_server.app import make_app, make_registration_app
from central_server.config import CentralConfig
from central_server.db import open_database
from tests.conftest import require_tool

from .conftest import (
    INSTANCE,
    RealCa,
    approve_certificate_request,
    approve_member_request,
    init_with_officer,
)
from .helpers import make_csr_pem


async def test_csr_issued_by_the_real_ca(
    aiohttp_client, tmp_path, real_ca: RealCa
) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_server = real_ca.server
    config = CentralConfig(home=tmp_path / "central", ca=real_ca.settings)
    db = await open_database(config.db_url)
    try:
        auth = await init_with_officer(db, now)
    finally:
        await db.dispose()
    admin = await aiohttp_client(make_app(config))
    public = await aiohttp_client(make_registration_app(config))

    await approve_member_request(public, admin, auth)
    state = await approve_certificate_request(
        public,
        admin,
        auth,
        {
            "usage": "sign",
            "member": f"MEMBER:{INSTANCE}/COM/1234",
            "csr": make_csr_pem("1234", o="Acme Corp"),
        },
    )

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
