"""Onboarding against a real central server and CA: CSRs, authCertReg, sync.

CSR request -> the operator approves through the central admin API (the
real CA issues) -> ``fetch_certificate`` imports; a declined request shows
the reason; ``authCertReg`` reaches the central server's registration port
and is stored pending; approving it lists the server in the next
configuration, and the download marks the certificate registered.
Refusals change nothing: wrong PIN, no signing certificate, central server
unreachable, central fault.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from jplink.cli import root
from jplink.errors import (
    CertificateValidationError,
    Conflict,
    NotFound,
    SoapFault,
    TransportError,
    Unauthenticated,
)
from jplink.globalconf import SharedParameters
from jplink.identifiers import SecurityServerId
from security_server import audit, certificates, clients, registration
from security_server.models import CentralRequest, Certificate
from security_server.states import CertStatus
from tests.conftest import require_tool
from tests.support.ports import free_port

from .test_onboarding_world import (  # noqa: F401  (world is a fixture)
    INSTANCE,
    OWNER,
    PIN,
    SERVER_CODE,
    World,
    real_now,
    world_fixture,
)

SS1 = SecurityServerId(INSTANCE, OWNER.member_class, OWNER.member_code, SERVER_CODE)


async def _certificate(w: World, csr_id: int) -> str:
    """Submit, approve, fetch: the imported certificate's SHA-256."""
    sub = await registration.submit_csr(
        w.db,
        csr_id,
        central_url=w.central.registration_url,
        session=w.http,
        actor="test",
        now=real_now(),
    )
    await w.central.approve_cert_request(sub.request_id)
    got = await registration.fetch_certificate(
        w.db, csr_id, session=w.http, actor="test", now=real_now()
    )
    assert got.status == "approved" and got.cert_sha256
    return got.cert_sha256


async def _rows(w: World) -> list[CentralRequest]:
    async with w.db.transaction() as s:
        return list((await s.execute(select(CentralRequest))).scalars())


async def _states(w: World) -> dict[str, str]:
    return {
        c.sha256: c.status.value for c in await certificates.list_certificates(w.db)
    }


async def test_csr_submitted_approved_fetched_and_imported(
    world: World, tmp_path: Path
) -> None:
    w = world
    sub = await registration.submit_csr(
        w.db,
        w.sign_csr,
        central_url=w.central.registration_url,
        session=w.http,
        actor="test",
        now=real_now(),
    )
    assert sub.status == "submitted"
    pending = await registration.fetch_certificate(
        w.db, w.sign_csr, session=w.http, actor="test", now=real_now()
    )
    assert (pending.status, pending.cert_sha256) == ("pending", None)

    await w.central.approve_cert_request(sub.request_id)
    got = await registration.fetch_certificate(
        w.db, w.sign_csr, session=w.http, actor="test", now=real_now()
    )
    assert got.status == "approved"
    [info] = await certificates.list_certificates(w.db)
    assert (info.sha256, info.status) == (got.cert_sha256, CertStatus.SAVED)
    # A second fetch is harmless and reports the same certificate.
    again = await registration.fetch_certificate(
        w.db, w.sign_csr, session=w.http, actor="test", now=real_now()
    )
    assert again.cert_sha256 == got.cert_sha256
    assert len(await certificates.list_certificates(w.db)) == 1

    # The token is kept, but nowhere in the audit log.
    [row] = await _rows(w)
    assert row.requester_token and row.central_id == str(sub.request_id)
    entries = await audit.list_audit(w.db, limit=200)
    assert row.requester_token not in repr(entries)
    assert {"central.csr", "central.csr.approved"} <= {e.action for e in entries}

    # Independent check: openssl verifies the chain to the CA root.
    assert got.cert_sha256 is not None
    der = await _der(w, got.cert_sha256)
    root_pem = tmp_path / "root.pem"
    loaded = registration.load_configuration(w.ss, now=real_now())
    root_pem.write_bytes(loaded.shared.trusted_ca_certs()[0].public_bytes(Encoding.PEM))
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM))
    out = subprocess.run(
        [require_tool("openssl"), "verify", "-CAfile", str(root_pem), str(leaf)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and ": OK" in out.stdout, out.stderr


async def test_declined_csr_shows_the_reason(world: World) -> None:
    w = world
    sub = await registration.submit_csr(
        w.db,
        w.auth_csr,
        central_url=w.central.registration_url,
        session=w.http,
        actor="test",
        now=real_now(),
    )
    await w.central.decline_cert_request(sub.request_id, "Wrong server code")
    got = await registration.fetch_certificate(
        w.db, w.auth_csr, session=w.http, actor="test", now=real_now()
    )
    assert (got.status, got.decline_reason) == ("declined", "Wrong server code")
    assert await certificates.list_certificates(w.db) == []
    [row] = await _rows(w)
    assert (row.status, row.reason) == ("declined", "Wrong server code")


@pytest.mark.parametrize("world", ["sqlite", "postgresql"], indirect=True)
async def test_auth_cert_reg_approved_then_registered(world: World) -> None:
    w = world
    await _certificate(w, w.sign_csr)
    auth_sha = await _certificate(w, w.auth_csr)
    await w.refresh_ocsp()

    sent = await registration.register_auth_cert(
        w.db,
        w.ss,
        auth_sha,
        address="127.0.0.1",
        pin=PIN,
        session=w.http,
        actor="test",
        now=real_now(),
    )
    assert sent.state == "registration-in-progress"
    assert (await _states(w))[auth_sha] == "registration-in-progress"
    [stored] = [
        r for r in await w.central.management_requests() if r["type"] == "authCertReg"
    ]
    assert stored["id"] == sent.request_id
    assert stored["status"] == "pending"
    assert stored["server"] == str(SS1)
    assert stored["address"] == "127.0.0.1"
    assert base64.b64decode(stored["authCertHash"]).hex() == auth_sha

    await w.central.approve_management_request(sent.request_id)

    def listed(shared: SharedParameters) -> bool:
        try:
            return bytes.fromhex(auth_sha) in shared.server(SS1).auth_cert_hashes
        except NotFound:
            return False

    owner_before = await clients.list_clients(w.db)
    assert [c.state.value for c in owner_before if c.is_owner] == ["saved"]
    await w.wait_for(listed)
    assert (await _states(w))[auth_sha] == "registered"
    # The configuration lists the server: its owner is registered too.
    owner_after = await clients.list_clients(w.db)
    assert [c.state.value for c in owner_after if c.is_owner] == ["registered"]
    [row] = [r for r in await _rows(w) if r.kind == "authCertReg"]
    assert (row.status, row.central_id) == ("completed", str(sent.request_id))
    actions = {e.action for e in await audit.list_audit(w.db, limit=200)}
    assert {"central.authCertReg", "registration.sync"} <= actions


async def test_refusals_change_nothing(world: World) -> None:
    w = world
    auth_sha = await _certificate(w, w.auth_csr)

    async def register(**kw: Any) -> registration.ManagementSubmission:
        args = {"address": "127.0.0.1", "pin": PIN, **kw}
        return await registration.register_auth_cert(
            w.db, w.ss, auth_sha, session=w.http, actor="test", now=real_now(), **args
        )

    before = len(await w.central.management_requests())
    with pytest.raises(Unauthenticated) as wrong_pin:
        await register(pin="wrong")
    assert wrong_pin.value.code == "PinIncorrect"
    with pytest.raises(NotFound) as no_sign:  # no signing cert of the owner yet
        await register()
    assert no_sign.value.code == "CertNotFound"
    assert "sign" in no_sign.value.message

    await _certificate(w, w.sign_csr)
    await w.refresh_ocsp()
    # The CA revokes the auth certificate: the central server refuses.
    ca_key = (w.central.config.ca.api_key_file).read_text().strip()
    serial = x509.load_der_x509_certificate(await _der(w, auth_sha)).serial_number
    async with w.http.post(
        f"{w.central.config.ca.url.rstrip('/')}/api/v1/certificates/{serial:x}/revoke",
        json={"reason": "keyCompromise"},
        headers={"Authorization": f"Bearer {ca_key}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
    with pytest.raises(SoapFault) as fault:
        await register()
    assert "revoked" in fault.value.message.lower()

    assert len(await w.central.management_requests()) == before
    assert (await _states(w))[auth_sha] == "saved"
    assert [r.kind for r in await _rows(w)] == ["csr", "csr"]


async def _der(w: World, sha: str) -> bytes:
    async with w.db.transaction() as s:
        return (
            await s.execute(
                select(Certificate.cert_der).where(Certificate.cert_sha256 == sha)
            )
        ).scalar_one()


async def test_central_unreachable_is_a_transport_error(world: World) -> None:
    w = world
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TransportError):
        await registration.submit_csr(
            w.db,
            w.sign_csr,
            central_url=dead,
            session=w.http,
            actor="t",
            now=real_now(),
        )
    assert await _rows(w) == []
    await registration.submit_csr(
        w.db,
        w.sign_csr,
        central_url=w.central.registration_url,
        session=w.http,
        actor="t",
        now=real_now(),
    )
    # Sent once: a second submit is refused locally, before any call.
    with pytest.raises(Conflict):
        await registration.submit_csr(
            w.db,
            w.sign_csr,
            central_url=dead,
            session=w.http,
            actor="t",
            now=real_now(),
        )
    assert len(await _rows(w)) == 1


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(root, list(args))
    return result.exit_code, result.output


async def test_cli_submit_fetch_register(world: World) -> None:
    w = world
    home = str(w.ss.home)
    pin_file = w.tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    ids = {}
    for csr_id in (w.sign_csr, w.auth_csr):
        code, out = await asyncio.to_thread(
            _cli,
            "ss", "csr", "submit", str(csr_id), "--home", home,
            "--central", w.central.registration_url,
        )  # fmt: skip
        assert code == 0, out
        shown = json.loads(out)
        assert shown["status"] == "submitted"
        assert "token" not in out
        ids[csr_id] = shown["request_id"]
        await w.central.approve_cert_request(shown["request_id"])
        code, out = await asyncio.to_thread(
            _cli, "ss", "csr", "fetch", str(csr_id), "--home", home
        )
        assert code == 0, out
        assert json.loads(out)["status"] == "approved"
    auth_sha = json.loads(out)["cert_sha256"]
    code, out = await asyncio.to_thread(
        _cli, "ss", "certs", "ocsp-refresh", "--home", home
    )
    assert code == 0, out

    code, out = await asyncio.to_thread(
        _cli,
        "ss", "certs", "register", auth_sha, "--home", home,
        "--address", "not an address!", "--pin-file", str(pin_file),
    )  # fmt: skip
    assert code == 1 and "Traceback" not in out
    assert "Invalid server address" in out

    code, out = await asyncio.to_thread(
        _cli,
        "ss", "certs", "register", auth_sha, "--home", home,
        "--address", "127.0.0.1", "--pin-file", str(pin_file),
    )  # fmt: skip
    assert code == 0, out
    shown = json.loads(out)
    assert shown["state"] == "registration-in-progress"
    assert shown["request_id"] in {
        r["id"] for r in await w.central.management_requests()
    }

    code, out = await asyncio.to_thread(
        _cli, "ss", "csr", "fetch", "999", "--home", home
    )
    assert code == 1 and "CsrNotSubmitted" in out and "Traceback" not in out


async def test_auth_cert_reg_with_a_port_in_the_address(world: World) -> None:
    w = world
    await _certificate(w, w.sign_csr)
    auth_sha = await _certificate(w, w.auth_csr)
    await w.refresh_ocsp()
    sent = await registration.register_auth_cert(
        w.db,
        w.ss,
        auth_sha,
        address="127.0.0.1:5501",
        pin=PIN,
        session=w.http,
        actor="test",
        now=real_now(),
    )
    [stored] = [
        r for r in await w.central.management_requests() if r["id"] == sent.request_id
    ]
    assert stored["address"] == "127.0.0.1:5501"


async def test_a_certificate_for_another_key_is_refused(
    world: World, aiohttp_server: Any
) -> None:
    """A central server answering with a certificate for another key of this
    token (one that ``certs import`` alone would accept) is refused."""
    w = world
    subs = {}
    for csr_id in (w.sign_csr, w.auth_csr):
        subs[csr_id] = await registration.submit_csr(
            w.db,
            csr_id,
            central_url=w.central.registration_url,
            session=w.http,
            actor="test",
            now=real_now(),
        )
    await w.central.approve_cert_request(subs[w.auth_csr].request_id)
    resp = await w.central.admin.get(
        "/api/v1/certificate-requests", headers=w.central.officer
    )
    [auth_pem] = [
        r["certificate"]
        for r in (await resp.json())["certificateRequests"]
        if r["id"] == subs[w.auth_csr].request_id
    ]

    async def liar(request: web.Request) -> web.Response:
        return web.json_response(
            {"id": int(request.match_info["id"]), "status": "approved",
             "certificate": auth_pem}
        )  # fmt: skip

    app = web.Application()
    app.router.add_get("/register/v1/certificate-requests/{id}", liar)
    fake = await aiohttp_server(app)
    with pytest.raises(CertificateValidationError) as caught:
        await registration.fetch_certificate(
            w.db,
            w.sign_csr,
            session=w.http,
            actor="test",
            now=real_now(),
            central_url=str(fake.make_url("")),
        )
    assert caught.value.code == "IncorrectCertificate"
    assert await certificates.list_certificates(w.db) == []
    assert {r.status for r in await _rows(w)} == {"submitted"}
