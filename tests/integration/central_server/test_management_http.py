"""The management SOAP endpoint (port 4001), the admin routes and the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json

import pytest
from click.testing import CliRunner

from ca_tsa.ocsp.responder import CertStatusAnswer
from central_server import apikeys, management, registry
from central_server.apikeys import Role
from central_server.app import make_app, make_registration_app
from central_server.config import CentralConfig, load_central_config
from central_server.db import open_database
from central_server.management_api import MANAGEMENT_PATH, REGISTRATION_PATH
from jplink.cli import root
from jplink.errors import SoapFault
from jplink.protocol import MessageRole, parse_soap_message
from jplink.protocol.faults import parse_fault
from jplink.protocol.management import ManagementRequest, parse_management_response
from jplink.security.ocsp import OcspCertStatus
from tests.conftest import FIXED_NOW
from tests.unit.jplink.protocol.test_management_helpers import (
    OTHER,
    OWNER,
    SERVER,
    MgmtPki,
    build_mgmt_pki,
    signed_message,
)

from .conftest import CLASSES, INSTANCE
from .test_management_service import SUB, T, reg, seed, submit


@pytest.fixture(scope="module")
def mp() -> MgmtPki:
    return build_mgmt_pki(FIXED_NOW)


@pytest.fixture(scope="module")
def signers(mp):
    return {"owner": mp.member(OWNER), "other": mp.member(OTHER, "Other Co")}


@pytest.fixture
async def setup(tmp_path, now, mp):
    config = CentralConfig(home=tmp_path)
    db = await open_database(config.db_url)
    try:
        await registry.initialize(
            db, "test", instance=INSTANCE, member_classes=CLASSES, now=now
        )
        await seed(db, mp, now)
        keys = {}
        for role in Role:
            _info, keys[role] = await apikeys.create_api_key(
                db, "test", name=role.value, role=role, now=now
            )
    finally:
        await db.dispose()
    return config, keys


@pytest.fixture
async def public(aiohttp_client, setup, now):
    config, _keys = setup
    return await aiohttp_client(make_registration_app(config, clock=lambda: now))


@pytest.fixture
async def admin(aiohttp_client, setup, now):
    config, _keys = setup
    return await aiohttp_client(make_app(config, ca_client=None, clock=lambda: now))


async def _stored(config) -> list:
    db = await open_database(config.db_url)
    try:
        return await management.list_management_requests(db)
    finally:
        await db.dispose()


async def _post(client, request, path=REGISTRATION_PATH, **signer):
    ctype, body, _soap = signed_message(request, **signer)
    return await client.post(path, data=body, headers={"Content-Type": ctype})


async def _fault(resp) -> SoapFault:
    assert resp.status == 500
    assert resp.content_type == "text/xml"
    return parse_fault(await resp.read())


async def test_auth_cert_reg_over_http_then_admin_approval(
    public,
    admin,
    setup,
    mp,
    signers,
    now,
):
    _config, keys = setup
    auth = mp.auth(SERVER)
    resp = await _post(public, reg(auth), member=signers["owner"], auth=auth)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/xml"
    answer = parse_soap_message(
        await resp.read(),
        content_type=resp.headers["Content-Type"],
        role=MessageRole.RESPONSE,
    )
    echoed = parse_management_response(answer)
    assert echoed.server == SERVER and echoed.auth_cert == reg(auth).auth_cert
    rid = echoed.request_id
    ro = {"Authorization": f"Bearer {keys[Role.REGISTRATION_OFFICER]}"}
    listed = await (await admin.get("/api/v1/management-requests", headers=ro)).json()
    assert [
        (r["id"], r["status"], r["type"]) for r in listed["managementRequests"]
    ] == [(rid, "pending", "authCertReg")]
    resp = await admin.post(
        f"/api/v1/management-requests/{rid}/approve", headers=ro, json={}
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "approved"
    servers = await (await admin.get("/api/v1/security-servers", headers=ro)).json()
    assert [s["id"] for s in servers["securityServers"]] == [str(SERVER)]


REVOKED = CertStatusAnswer(
    OcspCertStatus.REVOKED, revoked_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong-auth-signature", "Client.InvalidSignatureValue"),
        ("wrong-owner-signature", "Client.InvalidSignatureValue"),
        ("other-members-cert", "Client.IncorrectCertificate"),
        ("revoked", "Client.CertValidation"),
        ("unknown-member", "Client.NotFound"),
        ("wrong-path", "Client.InvalidRequest"),
    ],
)
async def test_bad_requests_get_faults_and_are_not_stored(
    public,
    setup,
    mp,
    signers,
    case,
    code,
):
    config, _keys = setup
    owner, auth = signers["owner"], mp.auth(SERVER)
    request, path = reg(auth), REGISTRATION_PATH
    if case == "wrong-auth-signature":
        auth = dataclasses.replace(auth, key=mp.auth(SERVER).key)
    elif case == "wrong-owner-signature":
        owner = dataclasses.replace(owner, key=mp.member(OWNER).key)
    elif case == "other-members-cert":
        owner = signers["other"]
    elif case == "revoked":
        owner = dataclasses.replace(owner, ocsp_der=mp.ocsp(owner.cert, REVOKED))
    elif case == "unknown-member":
        server = dataclasses.replace(SERVER, member_code="9999")
        auth = mp.auth(server)
        request = dataclasses.replace(reg(auth), server=server)
        owner = mp.member(server.owner)
    else:
        path = MANAGEMENT_PATH
    fault = await _fault(await _post(public, request, path, member=owner, auth=auth))
    assert fault.faultcode == code, fault.faultstring
    assert await _stored(config) == []


async def test_malformed_and_duplicate_requests(public, setup, mp, signers):
    config, _keys = setup
    resp = await public.post(
        REGISTRATION_PATH, data=b"<not-xml", headers={"Content-Type": "text/xml"}
    )
    assert (await _fault(resp)).faultcode == "Client.InvalidXml"
    resp = await public.post(
        MANAGEMENT_PATH, data=b"{}", headers={"Content-Type": "application/json"}
    )
    assert (await _fault(resp)).faultcode == "Client.InvalidContentType"
    auth = mp.auth(SERVER)
    ctype, body, _ = signed_message(reg(auth), member=signers["owner"], auth=auth)
    first = await public.post(
        REGISTRATION_PATH, data=body, headers={"Content-Type": ctype}
    )
    assert first.status == 200
    again = await public.post(
        REGISTRATION_PATH, data=body, headers={"Content-Type": ctype}
    )
    assert (await _fault(again)).faultcode == "Client.Conflict"
    assert len(await _stored(config)) == 1


async def test_other_operations_use_the_management_path(public, setup, mp, signers):
    request = ManagementRequest(T.CLIENT_REG, SERVER, client=SUB)
    resp = await _post(public, request, REGISTRATION_PATH, member=signers["owner"])
    assert (await _fault(resp)).faultcode == "Client.InvalidRequest"
    # The server does not exist yet: the registry check refuses it.
    resp = await _post(public, request, MANAGEMENT_PATH, member=signers["owner"])
    assert (await _fault(resp)).faultcode == "Client.NotFound"


async def test_admin_management_routes_need_the_right_role(admin, setup):
    _config, keys = setup
    paths = [
        ("GET", "/api/v1/management-requests"),
        ("POST", "/api/v1/management-requests/1/approve"),
        ("POST", "/api/v1/management-requests/1/decline"),
        ("PUT", "/api/v1/management-auto-approve"),
    ]
    for method, path in paths:
        assert (await admin.request(method, path, json={})).status == 401
        for role in (Role.SECURITY_OFFICER,):
            h = {"Authorization": f"Bearer {keys[role]}"}
            assert (await admin.request(method, path, headers=h, json={})).status == 403
    sa = {"Authorization": f"Bearer {keys[Role.SYSTEM_ADMINISTRATOR]}"}
    resp = await admin.put(
        "/api/v1/management-auto-approve", headers=sa, json={"enabled": True}
    )
    assert (await resp.json()) == {"enabled": True}


def test_cli_lists_approves_and_declines(tmp_path, mp, signers, now):
    home = tmp_path / "central"
    runner = CliRunner()
    init = runner.invoke(
        root,
        [
            "central",
            "init",
            "--home",
            str(home),
            "--instance",
            INSTANCE,
            "--member-class",
            "COM=Companies",
            "--member-class",
            "GOV=Government",
        ],
    )
    assert init.exit_code == 0, init.output

    async def prepare() -> tuple[int, int]:
        db = await open_database(load_central_config(home).db_url)
        try:
            await seed(db, mp, now)
            ss2 = dataclasses.replace(SERVER, server_code="ss2")
            a1, a2 = mp.auth(SERVER), mp.auth(ss2)
            v1 = await submit(db, reg(a1), now, member=signers["owner"], auth=a1)
            req2 = dataclasses.replace(reg(a2), server=ss2)
            v2 = await submit(db, req2, now, member=signers["owner"], auth=a2)
            return v1.id, v2.id
        finally:
            await db.dispose()

    first, second = asyncio.run(prepare())

    def cli(*args: str):
        result = runner.invoke(root, ["central", "mgmt", *args, "--home", str(home)])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert [r["id"] for r in cli("list", "--status", "pending")] == [first, second]
    assert cli("approve", str(first))["status"] == "approved"
    assert cli("decline", str(second), "--reason", "duplicate")["declineReason"] == (
        "duplicate"
    )
    assert cli("list", "--status", "pending") == []
    again = runner.invoke(
        root, ["central", "mgmt", "approve", str(first), "--home", str(home)]
    )
    assert again.exit_code == 1 and "Conflict" in again.output
