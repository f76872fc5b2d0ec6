"""Keys, CSRs and certificates through the admin API (SQLite and PostgreSQL).

The CSR downloaded from the API is checked with ``openssl req -verify`` and
signed by a test CA; the certificate goes back in through the API.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jplink.security.certs import (
    CertProfile,
    MemberSubject,
    build_end_entity_certificate,
    build_subject_name,
    random_serial_number,
    verify_csr,
)
from security_server.admin import Role
from tests.conftest import require_tool
from tests.support.pki import build_test_pki

from ..conftest import Server
from ..helpers import OWNER, OWNER_NAME, PIN, SERVER_CODE
from .conftest import ClientFactory, make_admin

SO, RO, AUD = Role.SECURITY_OFFICER, Role.REGISTRATION_OFFICER, Role.AUDITOR
AUTH_SUBJECT = MemberSubject("JP-TEST", "COM", "1111", OWNER_NAME, SERVER_CODE)
SIGN_SUBJECT = MemberSubject("JP-TEST", "COM", "1111", OWNER_NAME)


async def test_keys_csrs_and_certificates(
    server: Server, aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    openssl = require_tool("openssl")
    admin = await make_admin(aiohttp_client, server.db, server.config)
    refused = await admin.call(
        "POST", "/api/v1/keys", SO, body={"usage": "auth"}, expect=409
    )
    assert refused["code"] == "TokenNotActive"
    await admin.call("PUT", "/api/v1/tokens/0/login", SO, body={"pin": PIN})

    auth = await admin.call(
        "POST", "/api/v1/keys", SO, body={"usage": "auth", "key_type": "ec"}, expect=201
    )
    sign = await admin.call(
        "POST",
        "/api/v1/keys",
        RO,
        body={"usage": "sign", "member": str(OWNER), "label": "signing"},
        expect=201,
    )
    listed = await admin.call("GET", "/api/v1/keys", AUD)
    assert [k["key_id"] for k in listed] == [auth["key_id"], sign["key_id"]]
    assert listed[1]["label"] == "signing" and listed[1]["key_type"] == "rsa"

    csrs: dict[str, Any] = {}
    for key, profile in ((auth, CertProfile.AUTH), (sign, CertProfile.SIGN)):
        made = await admin.call(
            "POST", f"/api/v1/keys/{key['key_id']}/csrs", SO, expect=201
        )
        resp = await admin.client.get(
            f"/api/v1/csrs/{made['id']}", headers=admin.headers(AUD)
        )
        assert resp.status == 200 and resp.content_type == "application/pkcs10"
        pem = await resp.read()
        assert pem.decode() == made["pem"]
        path = tmp_path / f"{profile.value}.csr"
        path.write_bytes(pem)
        out = subprocess.run(
            [openssl, "req", "-in", str(path), "-verify", "-noout"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert "verify OK" in (out.stdout + out.stderr)
        csrs[profile.value] = pem
    assert len(await admin.call("GET", "/api/v1/csrs", RO)) == 2
    assert (await admin.call("GET", "/api/v1/csrs/99", AUD, expect=404))[
        "code"
    ] == "CsrNotFound"

    now = dt.datetime.now(dt.UTC)
    pki = build_test_pki(now - dt.timedelta(minutes=5))
    issued: dict[str, x509.Certificate] = {}
    for profile, subject in (
        (CertProfile.AUTH, AUTH_SUBJECT),
        (CertProfile.SIGN, SIGN_SUBJECT),
    ):
        name = build_subject_name(profile, subject)
        issued[profile.value] = build_end_entity_certificate(
            verify_csr(csrs[profile.value]),
            name,
            profile,
            pki.issuing,
            serial=random_serial_number(),
            ocsp_url=pki.ocsp_url,
            now=now - dt.timedelta(minutes=1),
            validity=dt.timedelta(days=30),
        )
    auth_cert = await admin.call(
        "POST",
        "/api/v1/certificates",
        SO,
        data=issued["auth"].public_bytes(Encoding.PEM),
        expect=201,
    )
    sign_cert = await admin.call(
        "POST",
        "/api/v1/certificates",
        RO,
        data=issued["sign"].public_bytes(Encoding.DER),
        expect=201,
    )
    assert (auth_cert["usage"], auth_cert["status"], auth_cert["active"]) == (
        "auth",
        "saved",
        True,
    )
    dup = await admin.call(
        "POST",
        "/api/v1/certificates",
        SO,
        data=issued["sign"].public_bytes(Encoding.PEM),
        expect=409,
    )
    assert dup["code"] == "CertificateExists"
    certs = await admin.call("GET", "/api/v1/certificates", AUD)
    assert {c["sha256"] for c in certs} == {auth_cert["sha256"], sign_cert["sha256"]}
    assert all(c["not_after"] and c["ocsp_status"] is None for c in certs)

    sha = sign_cert["sha256"]
    off = await admin.call("PUT", f"/api/v1/certificates/{sha}/disable", SO)
    assert off["active"] is False
    on = await admin.call("PUT", f"/api/v1/certificates/{sha}/activate", RO)
    assert on["active"] is True
    await admin.call("DELETE", f"/api/v1/certificates/{sha}", SO, expect=204)
    assert [
        c["sha256"] for c in await admin.call("GET", "/api/v1/certificates", AUD)
    ] == [auth_cert["sha256"]]
    await admin.call("DELETE", f"/api/v1/keys/{sign['key_id']}", SO, expect=204)
    assert len(await admin.call("GET", "/api/v1/keys", AUD)) == 1

    got = [(a, who) for a, who in await admin.audit_actions() if a != "apiKey.create"]
    assert [a for a, _ in got][-11:] == [
        "token.login",
        "key.generate",
        "key.generate",
        "csr.create",
        "csr.create",
        "cert.import",
        "cert.import",
        "cert.deactivate",
        "cert.activate",
        "cert.delete",
        "key.delete",
    ]
    # Every change made through the API names the key that made it.
    assert all(who.startswith("apikey:") for _, who in got[-11:])


async def test_bad_key_and_certificate_input(
    server: Server, aiohttp_client: ClientFactory
) -> None:
    admin = await make_admin(aiohttp_client, server.db, server.config)
    await admin.call("PUT", "/api/v1/tokens/0/login", SO, body={"pin": PIN})
    before = await admin.audit_actions()
    for body, status, code in (
        ({}, 400, "InvalidField"),
        ({"usage": "encrypt"}, 400, "InvalidField"),
        ({"usage": "auth", "key_type": "dsa"}, 400, "InvalidField"),
        ({"usage": "sign", "member": "MEMBER:JP-TEST/COM/9999"}, 404, "ClientNotFound"),
        ({"usage": "sign", "member": "JP-TEST/COM/9999"}, 400, "InvalidRequest"),
        ({"usage": "auth", "color": "red"}, 400, "InvalidField"),
    ):
        problem = await admin.call("POST", "/api/v1/keys", SO, body=body, expect=status)
        assert problem["code"] == code, problem
    for data in (b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAA\n"):
        problem = await admin.call(
            "POST", "/api/v1/certificates", SO, data=data, expect=400
        )
        assert problem["detail"]
    assert await admin.call("GET", "/api/v1/keys", AUD) == []
    assert await admin.call("GET", "/api/v1/certificates", AUD) == []
    assert await admin.audit_actions() == before
