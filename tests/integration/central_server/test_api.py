"""Admin REST API and public registration endpoint over HTTP (aiohttp_client)."""

from __future__ import annotations

import re
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from central_server import apikeys, registry
from central_server.apikeys import Role
from central_server.app import make_app, make_registration_app
from central_server.auth import ROUTE_ROLES
from central_server.config import CentralConfig
from central_server.db import open_database
from central_server.management_api import MANAGEMENT_PATH, REGISTRATION_PATH
from central_server.management_wsdl import MANAGEMENT_WSDL_PATH
from central_server.registration_api import PUBLIC_ROUTES
from jplink.clients.ca import FakeCaEnrolmentClient
from tests.conftest import require_tool

from .conftest import CLASSES, INSTANCE
from .helpers import make_cert, make_csr_pem

PROBLEM = "application/problem+json"


@pytest.fixture
async def setup(tmp_path, now):
    """A home with an initialised database and one API key per role."""
    config = CentralConfig(home=tmp_path)
    db = await open_database(config.db_url)
    keys: dict[Role | str, str] = {}
    try:
        await registry.initialize(
            db, "test", instance=INSTANCE, member_classes=CLASSES, now=now
        )
        for role in Role:
            _info, keys[role] = await apikeys.create_api_key(
                db, "test", name=role.value, role=role, now=now
            )
        revoked, keys["revoked"] = await apikeys.create_api_key(
            db, "test", name="old", role=Role.SYSTEM_ADMINISTRATOR, now=now
        )
        await apikeys.revoke_api_key(db, "test", revoked.key_id, now=now)
    finally:
        await db.dispose()
    return config, keys


@pytest.fixture
async def fake_ca(now):
    return FakeCaEnrolmentClient(now=now)


@pytest.fixture
async def admin(aiohttp_client, setup, fake_ca, now):
    config, _keys = setup
    return await aiohttp_client(make_app(config, ca_client=fake_ca, clock=lambda: now))


@pytest.fixture
async def public(aiohttp_client, setup, now):
    config, _keys = setup
    return await aiohttp_client(make_registration_app(config, clock=lambda: now))


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_every_admin_route_refuses_unauthenticated_and_other_roles(admin, setup):
    _config, keys = setup
    app = admin.server.app
    table = app[ROUTE_ROLES]
    routes = [
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD"
    ]
    # Every served route is declared with roles; nothing is served undeclared.
    assert sorted(routes) == sorted(table)
    assert len(routes) >= 25
    bad_keys = [None, "garbage", "jpcs_0123456789abcdef_" + "x" * 43, keys["revoked"]]
    for method, path in routes:
        url = _concrete(path)
        for bad in bad_keys:
            headers = _h(bad) if bad else {}
            resp = await admin.request(method, url, headers=headers, json={})
            assert resp.status == 401, (method, path, bad)
            assert resp.content_type == PROBLEM
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        for role in set(Role) - table[(method, path)]:
            resp = await admin.request(method, url, headers=_h(keys[role]), json={})
            assert resp.status == 403, (method, path, role)
            assert (await resp.json())["code"] == "AccessDenied"


async def test_unknown_admin_path_needs_a_key_too(admin, setup):
    _config, keys = setup
    assert (await admin.get("/api/v1/nothing")).status == 401
    resp = await admin.get("/api/v1/nothing", headers=_h(keys[Role.SECURITY_OFFICER]))
    assert resp.status == 404
    assert resp.content_type == PROBLEM


async def test_public_app_serves_only_the_registration_routes(public):
    app = public.server.app
    served = sorted(
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD"
    )
    management = [
        ("POST", REGISTRATION_PATH),
        ("POST", MANAGEMENT_PATH),
        ("GET", MANAGEMENT_WSDL_PATH),  # the management services' WSDL
    ]
    assert served == sorted([(m, p) for m, p, _h in PUBLIC_ROUTES] + management)
    assert (await public.get("/api/v1/members")).status == 404


async def test_join_flow_over_http(admin, public, setup, fake_ca, tmp_path, now):
    _config, keys = setup
    ro = _h(keys[Role.REGISTRATION_OFFICER])
    # 1. An organisation asks for a member code.
    resp = await public.post(
        "/register/v1/member-requests",
        json={
            "adminEmail": "admin@acme.example.jp",
            "organisationName": "Acme Corp",
            "memberClass": "COM",
            "memberCode": "1234",
        },
    )
    assert resp.status == 201, await resp.text()
    mreq = await resp.json()
    state = await public.get(
        f"/register/v1/member-requests/{mreq['id']}", headers=_h(mreq["token"])
    )
    assert (await state.json())["status"] == "pending"
    assert (
        await public.get(f"/register/v1/member-requests/{mreq['id']}")
    ).status == 401
    wrong = await public.get(
        f"/register/v1/member-requests/{mreq['id']}", headers=_h("nope")
    )
    assert wrong.status == 404
    # 2. The registration officer approves it.
    resp = await admin.post(
        f"/api/v1/member-requests/{mreq['id']}/approve", headers=ro, json={}
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["id"] == f"MEMBER:{INSTANCE}/COM/1234"
    state = await public.get(
        f"/register/v1/member-requests/{mreq['id']}", headers=_h(mreq["token"])
    )
    assert (await state.json())["memberCode"] == "1234"
    # 3. Its security-server admin asks for an auth certificate.
    csr = make_csr_pem("ss1", o="Acme Corp")
    body = {
        "usage": "auth",
        "member": f"MEMBER:{INSTANCE}/COM/1234",
        "serverCode": "ss1",
        "csr": csr,
    }
    resp = await public.post("/register/v1/certificate-requests", json=body)
    assert resp.status == 201, await resp.text()
    creq = await resp.json()
    replay = await public.post("/register/v1/certificate-requests", json=body)
    assert replay.status == 409
    assert (await replay.json())["code"] == "Conflict"
    # 4. The security officer approves; the CA issues; the requester downloads.
    so = _h(keys[Role.SECURITY_OFFICER])
    resp = await admin.post(
        f"/api/v1/certificate-requests/{creq['id']}/approve", headers=so
    )
    assert resp.status == 200, await resp.text()
    state = await (
        await public.get(
            f"/register/v1/certificate-requests/{creq['id']}", headers=_h(creq["token"])
        )
    ).json()
    assert state["status"] == "approved"
    # Independent check: openssl verifies the downloaded certificate against the CA.
    openssl = require_tool("openssl")
    (tmp_path / "cert.pem").write_text(state["certificate"])
    (tmp_path / "ca.pem").write_bytes(fake_ca.issuer.cert.public_bytes(Encoding.PEM))
    out = subprocess.run(
        [
            openssl,
            "verify",
            "-attime",
            str(int(now.timestamp())),
            "-CAfile",
            str(tmp_path / "ca.pem"),
            str(tmp_path / "cert.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    cert = x509.load_pem_x509_certificate(state["certificate"].encode())
    assert format(cert.serial_number, "x") == state["serial"]
    # 5. The audit log shows who did what.
    audit = await (await admin.get("/api/v1/audit", headers=so)).json()
    actions = [(a["action"], a["actor"].split("(")[0]) for a in audit["audit"][:4]]
    assert actions == [
        ("certRequest.approve", "apikey:security-officer"),
        ("certRequest.submit", "public"),
        ("memberRequest.approve", "apikey:registration-officer"),
        ("member.add", "apikey:registration-officer"),
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "InvalidJson"),
        (b"[1, 2]", 400, "InvalidJson"),
        (
            b'{"id": "MEMBER:JP-TEST/COM/1", "name": "x", "extra": 1}',
            400,
            "InvalidField",
        ),
        (b'{"id": "MEMBER:JP-TEST/COM", "name": "x"}', 400, "InvalidRequest"),
        (b'{"id": "SUBSYSTEM:JP-TEST/COM/1/s", "name": "x"}', 400, "InvalidRequest"),
        (b'{"id": "MEMBER:JP-TEST/NOPE/1", "name": "x"}', 400, "InvalidRequest"),
        (b'{"id": 5, "name": "x"}', 400, "InvalidField"),
        (b'{"name": "x"}', 400, "InvalidField"),
    ],
)
async def test_bad_admin_input_gives_problem_documents(
    admin, setup, body, status, code
):
    _config, keys = setup
    resp = await admin.post(
        "/api/v1/members", data=body, headers=_h(keys[Role.REGISTRATION_OFFICER])
    )
    assert resp.status == status
    assert resp.content_type == PROBLEM
    doc = await resp.json()
    assert (doc["status"], doc["code"]) == (status, code)
    members = await admin.get(
        "/api/v1/members", headers=_h(keys[Role.REGISTRATION_OFFICER])
    )
    assert (await members.json())["members"] == []


async def test_oversized_body_is_refused(public):
    resp = await public.post("/register/v1/certificate-requests", data=b"x" * 70000)
    assert resp.status == 413
    assert resp.content_type == PROBLEM


async def test_registry_and_trust_endpoints(admin, setup):
    _config, keys = setup
    ro, so, sa = (_h(keys[r]) for r in Role)
    member = f"MEMBER:{INSTANCE}/GOV/42"
    assert (
        await admin.post(
            "/api/v1/members", headers=ro, json={"id": member, "name": "Agency"}
        )
    ).status == 201
    sub = f"SUBSYSTEM:{INSTANCE}/GOV/42/MANAGEMENT"
    assert (
        await admin.post("/api/v1/subsystems", headers=ro, json={"id": sub})
    ).status == 201
    server = f"SERVER:{INSTANCE}/GOV/42/cs"
    resp = await admin.post(
        "/api/v1/security-servers",
        headers=ro,
        json={"id": server, "address": "cs.example.jp"},
    )
    assert resp.status == 201
    cert_pem = (
        x509.load_der_x509_certificate(make_cert("auth", ca=False))
        .public_bytes(Encoding.PEM)
        .decode()
    )
    resp = await admin.post(
        "/api/v1/security-servers/auth-certs",
        headers=ro,
        json={"server": server, "certificate": cert_pem},
    )
    assert resp.status == 201
    resp = await admin.post(
        "/api/v1/security-servers/clients",
        headers=ro,
        json={"server": server, "client": sub},
    )
    assert resp.status == 201
    group = f"GLOBALGROUP:{INSTANCE}/owners"
    assert (
        await admin.post("/api/v1/global-groups", headers=ro, json={"id": group})
    ).status == 201
    assert (
        await admin.post(
            "/api/v1/global-groups/members",
            headers=ro,
            json={"group": group, "client": member},
        )
    ).status == 201
    resp = await admin.put(
        "/api/v1/parameters/managementServiceProvider", headers=sa, json={"value": sub}
    )
    assert (await resp.json())["managementServiceProvider"] == sub
    resp = await admin.put(
        "/api/v1/parameters/ocspFreshnessSeconds", headers=sa, json={"value": True}
    )
    assert resp.status == 400
    import base64

    top = base64.b64encode(make_cert("Root", ca=True)).decode()
    resp = await admin.post(
        "/api/v1/approved-cas",
        headers=so,
        json={
            "name": "CA",
            "topCa": {"cert": top, "ocspUrl": "http://ca:8888/ocsp"},
            "certificateProfile": "jplink",
        },
    )
    assert resp.status == 201, await resp.text()
    tsa = base64.b64encode(make_cert("TSA", ca=False)).decode()
    resp = await admin.post(
        "/api/v1/approved-tsas",
        headers=so,
        json={"name": "TSA", "url": "http://tsa:8899/", "cert": tsa},
    )
    assert resp.status == 201
    [srv] = (await (await admin.get("/api/v1/security-servers", headers=so)).json())[
        "securityServers"
    ]
    assert srv["clients"] == [sub] and len(srv["authCertHashes"]) == 1
    [grp] = (await (await admin.get("/api/v1/global-groups", headers=so)).json())[
        "globalGroups"
    ]
    assert grp["members"] == [member]


async def test_api_keys_lifecycle(admin, setup):
    _config, keys = setup
    sa = _h(keys[Role.SYSTEM_ADMINISTRATOR])
    resp = await admin.post(
        "/api/v1/api-keys",
        headers=sa,
        json={"name": "bob", "role": "registration-officer"},
    )
    assert resp.status == 201
    created = await resp.json()
    assert (
        await admin.get("/api/v1/members", headers=_h(created["key"]))
    ).status == 200
    listed = (await (await admin.get("/api/v1/api-keys", headers=sa)).json())["apiKeys"]
    assert all("key" not in k for k in listed)  # never shown again
    assert (
        await admin.delete(f"/api/v1/api-keys/{created['keyId']}", headers=sa)
    ).status == 200
    assert (
        await admin.get("/api/v1/members", headers=_h(created["key"]))
    ).status == 401
    bad = await admin.post(
        "/api/v1/api-keys", headers=sa, json={"name": "x", "role": "root"}
    )
    assert bad.status == 400
