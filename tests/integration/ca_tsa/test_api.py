"""The enrolment HTTP API: auth, issuance, listing, revocation, problem responses."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ca_tsa.api import setup_enrolment
from ca_tsa.app import base_app
from ca_tsa.config import CaTsaConfig
from ca_tsa.home import init_ca_home, read_api_key
from tests.conftest import require_tool
from tests.support.pki import make_csr

Client = TestClient[web.Request, web.Application]

MEMBER = {
    "instance": "JP",
    "member_class": "COM",
    "member_code": "1234",
    "member_name": "Acme KK",
}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture
def config(tmp_path: Path, now: dt.datetime) -> CaTsaConfig:
    return init_ca_home(
        tmp_path / "ca",
        intermediate=True,
        key_type="ec",
        now=now - dt.timedelta(days=1),
    )


@pytest.fixture
async def client(aiohttp_client: Any, config: CaTsaConfig) -> Client:
    app = base_app(config, max_request_bytes=config.api.max_request_bytes)
    setup_enrolment(app)
    test_client: Client = await aiohttp_client(app)
    return test_client


def _auth(config: CaTsaConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {read_api_key(config)}"}


def _csr(key: rsa.RSAPrivateKey, cn: str) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return make_csr(key, name).decode()


async def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json(content_type=None)
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail"} <= set(body)
    assert "Traceback" not in json.dumps(body)
    return body


async def test_issue_sign_and_auth_then_verify_with_openssl(
    client: Client, config: CaTsaConfig, key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    openssl = require_tool("openssl")
    resp = await client.post(
        "/api/v1/certificates",
        json={"csr": _csr(key, "1234"), "profile": "sign", **MEMBER},
        headers=_auth(config),
    )
    assert resp.status == 201, await resp.text()
    sign = await resp.json()
    assert resp.headers["Location"] == f"/api/v1/certificates/{sign['serial']}"
    assert sign["status"] == "good"
    assert sign["member_id"] == "JP/COM/1234"
    cert = x509.load_pem_x509_certificate(sign["certificate"].encode())
    assert f"{cert.serial_number:x}" == sign["serial"]
    assert len(sign["chain"]) == 2

    resp = await client.post(
        "/api/v1/certificates",
        json={
            "csr": _csr(key, "ss1"),
            "profile": "auth",
            "server_code": "ss1",
            **MEMBER,
        },
        headers=_auth(config),
    )
    assert resp.status == 201, await resp.text()
    auth = await resp.json()
    assert auth["server_code"] == "ss1"

    (tmp_path / "chain.pem").write_text(sign["chain"][0])
    for body in (sign, auth):
        (tmp_path / "ee.pem").write_text(body["certificate"])
        out = subprocess.run(
            [
                openssl,
                "verify",
                "-CAfile",
                str(config.home / "certs" / "root.pem"),
                "-untrusted",
                str(tmp_path / "chain.pem"),
                str(tmp_path / "ee.pem"),
            ],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr


async def test_list_get_revoke(
    client: Client, config: CaTsaConfig, key: rsa.RSAPrivateKey
) -> None:
    resp = await client.post(
        "/api/v1/certificates",
        json={"csr": _csr(key, "1234"), "profile": "sign", **MEMBER},
        headers=_auth(config),
    )
    serial = (await resp.json())["serial"]
    listing = await (
        await client.get("/api/v1/certificates", headers=_auth(config))
    ).json()
    assert [c["serial"] for c in listing["certificates"]] == [serial]
    assert "certificate" not in listing["certificates"][0]
    filtered = await client.get(
        "/api/v1/certificates?member_id=JP/GOV/1", headers=_auth(config)
    )
    assert (await filtered.json())["certificates"] == []

    one = await client.get(
        f"/api/v1/certificates/{serial.upper()}", headers=_auth(config)
    )
    assert (await one.json())["serial"] == serial

    resp = await client.post(
        f"/api/v1/certificates/{serial}/revoke",
        json={"reason": "keyCompromise"},
        headers=_auth(config),
    )
    assert resp.status == 200, await resp.text()
    revoked = await resp.json()
    assert revoked["status"] == "revoked"
    assert revoked["revocation_reason"] == "keyCompromise"
    assert revoked["revoked_at"] is not None

    again = await client.post(
        f"/api/v1/certificates/{serial}/revoke", json={}, headers=_auth(config)
    )
    await _problem(again, 409, "AlreadyRevoked")
    missing = await client.post(
        "/api/v1/certificates/abc/revoke", json={}, headers=_auth(config)
    )
    await _problem(missing, 404, "NotFound")
    bad_reason = await client.post(
        f"/api/v1/certificates/{serial}/revoke",
        json={"reason": "certificateHold"},
        headers=_auth(config),
    )
    await _problem(bad_reason, 400, "InvalidReason")
    bad_serial = await client.get("/api/v1/certificates/xyz", headers=_auth(config))
    await _problem(bad_serial, 400, "InvalidSerial")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/certificates"),
        ("GET", "/api/v1/certificates"),
        ("GET", "/api/v1/certificates/1"),
        ("POST", "/api/v1/certificates/1/revoke"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-the-key"},
    ],
)
async def test_authentication_required(
    client: Client, method: str, path: str, headers: dict[str, str]
) -> None:
    resp = await client.request(method, path, headers=headers, json={})
    body = await _problem(resp, 401, "Unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "not-the-key" not in json.dumps(body)


async def test_ca_certificates_are_public(client: Client, config: CaTsaConfig) -> None:
    resp = await client.get("/api/v1/ca-certificates")
    assert resp.status == 200
    body = await resp.json()
    root = (config.home / "certs" / "root.pem").read_text()
    assert body["root"] == root
    assert body["chain"][-1] == root
    assert body["chain"][0] == (config.home / "certs" / "intermediate.pem").read_text()
    assert body["ocsp_url"] == config.ocsp.url
    assert "PRIVATE" not in json.dumps(body)


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"not json", 400, "InvalidJson"),
        (b"[1, 2]", 400, "InvalidJson"),
        (json.dumps({"profile": "sign", **MEMBER}).encode(), 400, "InvalidField"),
        (
            json.dumps({"csr": "x", "profile": "ca", **MEMBER}).encode(),
            400,
            "InvalidProfile",
        ),
        (
            json.dumps({"csr": "x", "profile": "sign", "extra": 1, **MEMBER}).encode(),
            400,
            "InvalidField",
        ),
        (
            json.dumps({"csr": "garbage", "profile": "sign", **MEMBER}).encode(),
            400,
            "InvalidCsr",
        ),
        (
            json.dumps(
                {"csr": "x", "profile": "sign", **{**MEMBER, "member_code": "a/b"}}
            ).encode(),
            400,
            "InvalidIdentifier",
        ),
        (
            json.dumps(
                {"csr": "x", "profile": "sign", **{**MEMBER, "member_code": 5}}
            ).encode(),
            400,
            "InvalidField",
        ),
    ],
)
async def test_bad_enrolment_requests(
    client: Client, config: CaTsaConfig, payload: bytes, status: int, code: str
) -> None:
    resp = await client.post(
        "/api/v1/certificates", data=payload, headers=_auth(config)
    )
    await _problem(resp, status, code)


async def test_csr_rejections_over_http(client: Client, config: CaTsaConfig) -> None:
    weak = rsa.generate_private_key(65537, 1024)
    resp = await client.post(
        "/api/v1/certificates",
        json={"csr": _csr(weak, "1234"), "profile": "sign", **MEMBER},
        headers=_auth(config),
    )
    body = await _problem(resp, 400, "WeakKey")
    assert "1024" in body["detail"]
    good = rsa.generate_private_key(65537, 2048)
    resp = await client.post(
        "/api/v1/certificates",
        json={"csr": _csr(good, "9999"), "profile": "sign", **MEMBER},
        headers=_auth(config),
    )
    await _problem(resp, 400, "InvalidSubject")
    listing = await (
        await client.get("/api/v1/certificates", headers=_auth(config))
    ).json()
    assert listing["certificates"] == []  # nothing half-issued


async def test_body_limit(client: Client, config: CaTsaConfig) -> None:
    big = b"{" + b" " * (config.api.max_request_bytes + 10) + b"}"
    resp = await client.post("/api/v1/certificates", data=big, headers=_auth(config))
    await _problem(resp, 413, "RequestTooLarge")


async def test_unknown_route_and_method_are_problems(
    client: Client, config: CaTsaConfig
) -> None:
    await _problem(await client.get("/api/v1/nothing"), 404, "NotFound")
    await _problem(
        await client.delete("/api/v1/certificates", headers=_auth(config)),
        405,
        "MethodNotAllowed",
    )


async def test_unexpected_errors_are_opaque(
    aiohttp_client: Any, config: CaTsaConfig
) -> None:
    app = base_app(config, max_request_bytes=1024)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail")

    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    body = await _problem(await client.get("/boom"), 500, "InternalError")
    assert "secret" not in json.dumps(body)
