"""API keys, the audit log and diagnostics through the admin API, and the
peer connection test against a real TLS listener."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding

from jplink.globalconf import (
    GlobalSettings,
    Member,
    SecurityServer,
    SharedParameters,
    auth_cert_hash,
)
from jplink.identifiers import SecurityServerId
from jplink.security.certs import CertProfile, MemberSubject
from jplink.security.tls import server_ssl_context
from security_server.admin import Role
from security_server.admin.peer_check import check_peer, parse_address
from tests.support.pki import build_test_pki
from tests.support.ports import free_port

from ..helpers import OWNER, OWNER_NAME
from .conftest import Admin

SO, SYS, AUD = Role.SECURITY_OFFICER, Role.SYSTEM_ADMINISTRATOR, Role.AUDITOR


async def test_api_keys_through_the_api(admin: Admin) -> None:
    made = await admin.call(
        "POST",
        "/api/v1/api-keys",
        SYS,
        body={"name": "ops team", "roles": ["service-administrator", "auditor"]},
        expect=201,
    )
    key, info = made["key"], made["info"]
    assert key.startswith(f"jpss_{info['key_id']}_")
    assert info["roles"] == ["auditor", "service-administrator"]
    headers = {"Authorization": f"X-Road-ApiKey token={key}"}
    assert (await admin.client.get("/api/v1/status", headers=headers)).status == 200
    assert (await admin.client.get("/api/v1/keys", headers=headers)).status == 200
    assert (await admin.client.get("/api/v1/api-keys", headers=headers)).status == 403
    listed = await admin.call("GET", "/api/v1/api-keys", SYS)
    assert "key" not in listed[-1] and "key_hash" not in listed[-1]
    assert listed[-1]["key_id"] == info["key_id"]
    revoked = await admin.call("DELETE", f"/api/v1/api-keys/{info['key_id']}", SYS)
    assert revoked["revoked_at"]
    assert (await admin.client.get("/api/v1/status", headers=headers)).status == 401
    again = await admin.call(
        "DELETE", f"/api/v1/api-keys/{info['key_id']}", SYS, expect=409
    )
    assert again["code"] == "ApiKeyRevoked"
    for body in (
        {"name": "x", "roles": ["root"]},
        {"name": "x", "roles": []},
        {"name": "x", "roles": "auditor"},
        {"name": "", "roles": ["auditor"]},
        {"roles": ["auditor"]},
    ):
        problem = await admin.call(
            "POST", "/api/v1/api-keys", SYS, body=body, expect=400
        )
        assert problem["detail"]
    await admin.call("DELETE", "/api/v1/api-keys/nothex", SYS, expect=400)
    await admin.call("DELETE", "/api/v1/api-keys/0123456789abcdef", SYS, expect=404)

    log = await admin.call("GET", "/api/v1/audit-log?limit=2", SO)
    assert [(r["action"], r["target"]) for r in log] == [
        ("apiKey.revoke", info["key_id"]),
        ("apiKey.create", info["key_id"]),
    ]
    assert log[0]["actor"].startswith("apikey:system-administrator(")
    assert log[1]["detail"] == {
        "name": "ops team",
        "roles": ["auditor", "service-administrator"],
    }
    await admin.call("GET", "/api/v1/audit-log?limit=0", SYS, expect=400)
    await admin.call("GET", "/api/v1/audit-log", AUD, expect=403)


async def test_diagnostics_without_configuration(admin: Admin) -> None:
    assert await admin.call("GET", "/api/v1/diagnostics/ocsp", AUD) == []
    problem = await admin.call(
        "GET", "/api/v1/diagnostics/global-configuration", SYS, expect=404
    )
    assert problem["code"] == "ServerNotInitialized"
    bad = await admin.call(
        "POST", "/api/v1/diagnostics/connection", SO, body={"address": "a b:x"},
        expect=400,
    )  # fmt: skip
    assert bad["code"] == "InvalidAddress"
    port = free_port()
    result = await admin.call(
        "POST", "/api/v1/diagnostics/connection", SO,
        body={"address": f"127.0.0.1:{port}"},
    )  # fmt: skip
    assert (result["tcp_ok"], result["tls_ok"]) == (False, False)
    assert "TCP connect failed" in result["error"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ss.example.jp", ("ss.example.jp", 5500)),
        ("127.0.0.1:25500", ("127.0.0.1", 25500)),
        ("[::1]:5501", ("::1", 5501)),
        ("[::1]", ("::1", 5500)),
        ("::1", ("::1", 5500)),  # a bare IPv6 address: no port
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "a:b", "h:0", "h:70000", "x/y", "[::1", "[::1]x"])
def test_parse_address_refuses(text: str) -> None:
    from jplink.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        parse_address(text)


async def test_connection_test_against_a_tls_listener(
    aiohttp_server: Any, now: dt.datetime
) -> None:
    real = dt.datetime.now(dt.UTC)
    pki = build_test_pki(real - dt.timedelta(hours=1))
    subject = MemberSubject("JP-TEST", "COM", "1111", OWNER_NAME, "ss1")
    cert, key = pki.issue(CertProfile.AUTH, subject)
    context = server_ssl_context((cert, *pki.chain), key, client_ca_certs=pki.chain)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)
    server = await aiohttp_server(app, ssl=context)
    address = f"127.0.0.1:{server.port}"
    der = cert.public_bytes(Encoding.DER)

    unlisted = await check_peer(address, shared=None, timeout=5)
    assert (unlisted.tcp_ok, unlisted.tls_ok) == (True, True)
    assert unlisted.cert_sha256 == hashlib.sha256(der).hexdigest()
    assert unlisted.registered_server is None and unlisted.error

    server_id = SecurityServerId("JP-TEST", "COM", "1111", "ss1")
    shared = SharedParameters(
        instance_identifier="JP-TEST",
        global_settings=GlobalSettings(),
        members=(Member(OWNER, "Commercial", OWNER_NAME),),
        security_servers=(
            SecurityServer(server_id, address, (auth_cert_hash(cert),), (OWNER,)),
        ),
    )
    listed = await check_peer(address, shared=shared, timeout=5)
    assert listed.registered_server == str(server_id) and listed.error is None
