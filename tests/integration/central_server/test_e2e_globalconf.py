"""End to end: from a member-code request to a verified downloaded configuration.

member-code request -> approval -> auth CSR request -> approval (the real CA
app issues the certificate over HTTP) -> the security server and its auth
certificate are registered through the service layer -> the publisher
generates and serves -> the core downloader, given the generated anchor,
downloads and verifies -> the model lists the member, its subsystem and the
server's auth-cert hash. The served directory's signature is also checked
independently with ``openssl dgst -sha512 -verify``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import subprocess

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from central_server import registry, servers
from central_server.app import make_app, make_registration_app
from central_server.confgen import (
    SourceType,
    add_signing_key,
    generate_anchor,
)
from central_server.config import CentralConfig, PublisherSettings
from central_server.db import open_database
from central_server.publisher import make_publisher_app
from jplink.clients.globalconf import fetch_global_configuration
from jplink.globalconf import auth_cert_hash, parse_configuration_anchor
from jplink.identifiers import ClientId, SecurityServerId
from tests.conftest import require_tool

from .conftest import (
    INSTANCE,
    RealCa,
    approve_certificate_request,
    approve_member_request,
    init_with_officer,
)
from .helpers import make_csr_pem


def _signed_part(body: bytes) -> tuple[bytes, bytes]:
    """The signed bytes and the signature, found by hand (PR-GCONF §9.3)."""
    start = body.index(b"\r\n\r\n") + 4
    inner = body[start : body.index(b"\r\n", start)]  # "--<inner boundary>"
    end = body.index(inner + b"--\r\n", start) + len(inner) + 4
    lines = body.split(b"\r\n")
    return body[start:end], base64.b64decode(lines[-3])


async def test_member_to_downloaded_configuration(
    aiohttp_server, aiohttp_client, tmp_path, real_ca: RealCa
):
    now = dt.datetime.now(dt.UTC)
    config = CentralConfig(
        home=tmp_path / "central",
        ca=real_ca.settings,
        publisher=PublisherSettings(poll_seconds=0.1),
    )
    db = await open_database(config.db_url)
    try:
        auth = await init_with_officer(db, now)
        admin = await aiohttp_client(make_app(config))
        public = await aiohttp_client(make_registration_app(config))

        # 1. Member-code request and approval.
        await approve_member_request(public, admin, auth)

        # 2. Auth CSR request, approved: the real CA issues it.
        state = await approve_certificate_request(
            public,
            admin,
            auth,
            {
                "usage": "auth",
                "member": f"MEMBER:{INSTANCE}/COM/1234",
                "serverCode": "ss1",
                "csr": make_csr_pem("ss1", o="Acme Corp"),
            },
        )
        auth_cert = x509.load_pem_x509_certificate(state["certificate"].encode())

        # 3. The server, its auth cert, a subsystem and the management service.
        acme = ClientId(INSTANCE, "COM", "1234")
        trade = acme.subsystem("trade")
        ss1 = SecurityServerId(INSTANCE, "COM", "1234", "ss1")
        await registry.add_subsystem(db, "t", trade, name="Trading", now=now)
        await registry.set_management_service_provider(db, "t", trade, now=now)
        await servers.add_security_server(db, "t", ss1, address="ss1.acme.jp", now=now)
        await servers.register_auth_cert(
            db, "t", ss1, auth_cert.public_bytes(Encoding.DER), now=now
        )
        await servers.add_server_client(db, "t", ss1, trade, now=now)
        await add_signing_key(db, "t", config.home, SourceType.INTERNAL, now=now)
        await add_signing_key(db, "t", config.home, SourceType.EXTERNAL, now=now)

        # 4. The publisher serves on a loopback port; the anchor points at it.
        pub = await aiohttp_server(make_publisher_app(config))
        url = str(pub.make_url("")).rstrip("/")
        served = dataclasses.replace(
            config,
            publisher=dataclasses.replace(config.publisher, source_urls=(url,)),
        )
        anchor_xml = await generate_anchor(db, served, external=False, now=now)
    finally:
        await db.dispose()
    anchor = parse_configuration_anchor(anchor_xml)
    assert anchor.sources[0].download_url == f"{url}/internalconf"

    # 5. The core downloader verifies and saves; the model lists everything.
    async with aiohttp.ClientSession() as session:
        loaded = await fetch_global_configuration(
            session, anchor, tmp_path / "ss-conf", now=dt.datetime.now(dt.UTC)
        )
        async with session.get(f"{url}/internalconf") as resp:
            body = await resp.read()
    shared = loaded.shared
    assert shared.member_name(acme) == "Acme Corp"
    assert shared.is_registered(trade)
    assert shared.server_for_auth_cert(auth_cert).id == ss1
    assert shared.server(ss1).auth_cert_hashes == (auth_cert_hash(auth_cert),)
    assert shared.servers_for_client(trade)[0].address == "ss1.acme.jp"
    assert shared.trusted_ca_certs() == ()  # no CA approved in this instance
    assert loaded.private is not None
    assert loaded.private.management_service.provider_id == trade

    # 6. Independent signature check of the served directory.
    signed, signature = _signed_part(body)
    (tmp_path / "signed.bin").write_bytes(signed)
    (tmp_path / "sig.bin").write_bytes(signature)
    (tmp_path / "pub.pem").write_bytes(
        anchor.verification_certs[0]
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    openssl = require_tool("openssl")
    out = subprocess.run(
        [
            openssl,
            "dgst",
            "-sha512",
            "-verify",
            str(tmp_path / "pub.pem"),
            "-signature",
            str(tmp_path / "sig.bin"),
            str(tmp_path / "signed.bin"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "Verified OK" in out.stdout, out.stderr
    (tmp_path / "signed.bin").write_bytes(signed.replace(b"Version: 6", b"Version: 7"))
    bad = subprocess.run(
        [
            openssl,
            "dgst",
            "-sha512",
            "-verify",
            str(tmp_path / "pub.pem"),
            "-signature",
            str(tmp_path / "sig.bin"),
            str(tmp_path / "signed.bin"),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0
