"""authCertReg in X-Road's layout, against the real ca_tsa OCSP responder.

An X-Road 7 security server sends PR-MSERV §2.3's parts only (no OCSP
response for the authentication certificate). The central server must then
ask the approved CA's responder itself, over HTTP on loopback, and register
only on a fresh GOOD status. Certificates are issued and revoked through the
CA's enrolment API, so the responder answers from its own database. The CA
answers with the wall clock, so these tests run on the wall clock too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

ca_home = pytest.importorskip("ca_tsa.home")
ca_app = pytest.importorskip("ca_tsa.app")

from central_server import management, registry, trust  # noqa: E402
from central_server.app import make_registration_app  # noqa: E402
from central_server.config import CentralConfig  # noqa: E402
from central_server.db import open_database  # noqa: E402
from central_server.management_api import REGISTRATION_PATH  # noqa: E402
from jplink.clients.ca import AiohttpCaEnrolmentClient, EnrolmentRequest  # noqa: E402
from jplink.clients.ocsp import AiohttpOcspClient  # noqa: E402
from jplink.protocol.faults import parse_fault  # noqa: E402
from jplink.protocol.management import ManagementSigner  # noqa: E402
from jplink.security.certs import CertProfile, MemberSubject  # noqa: E402
from jplink.security.ocsp import build_ocsp_request  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.unit.jplink.protocol.test_management_helpers import (  # noqa: E402
    OWNER,
    PROVIDER,
    SERVER,
    signed_message,
)

from .conftest import CLASSES, INSTANCE  # noqa: E402
from .helpers import make_csr_pem, rsa_key  # noqa: E402
from .test_management_service import PROFILE, reg  # noqa: E402


@dataclass
class RealCa:
    url: str
    api_key: str
    root: x509.Certificate
    ocsp_cert: x509.Certificate
    session: aiohttp.ClientSession

    async def issue(
        self, profile: CertProfile, server_code: str | None = None
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        key = rsa_key()
        cn = server_code or OWNER.member_code
        csr = make_csr_pem(cn, o="Acme", key=key)
        subject = MemberSubject(
            INSTANCE, OWNER.member_class, OWNER.member_code, "Acme", server_code
        )
        client = AiohttpCaEnrolmentClient(self.session, self.url, self.api_key)
        issued = await client.enrol(EnrolmentRequest(csr, profile, subject))
        return x509.load_pem_x509_certificate(issued.certificate_pem.encode()), key

    async def ocsp(self, cert: x509.Certificate) -> bytes:
        client = AiohttpOcspClient(self.session)
        return await client.fetch(
            f"{self.url}/ocsp", build_ocsp_request(cert, self.root)
        )

    async def revoke(self, cert: x509.Certificate) -> None:
        async with self.session.post(
            f"{self.url}/api/v1/certificates/{cert.serial_number:x}/revoke",
            json={"reason": "keyCompromise"},
            headers={"Authorization": f"Bearer {self.api_key}"},
        ) as resp:
            assert resp.status == 200, await resp.text()


@pytest.fixture
async def ca(aiohttp_server, tmp_path):
    now = dt.datetime.now(dt.UTC)
    config = ca_home.init_ca_home(tmp_path / "ca", now=now - dt.timedelta(hours=1))
    server = await aiohttp_server(ca_app.make_app(config))
    material = ca_home.load_ca_material(config)
    async with aiohttp.ClientSession() as session:
        yield RealCa(
            str(server.make_url("")).rstrip("/"),
            ca_home.read_api_key(config),
            material.root_cert,
            material.ocsp_cert,
            session,
        )


def _dead_url() -> str:
    """A loopback URL nobody listens on (the port was just released)."""
    port = free_port()
    return f"http://127.0.0.1:{port}/ocsp"


async def _central(tmp_path, ca: RealCa, ocsp_url: str) -> CentralConfig:
    config = CentralConfig(home=tmp_path / "central")
    config.home.mkdir()
    now = dt.datetime.now(dt.UTC)
    db = await open_database(config.db_url)
    try:
        await registry.initialize(
            db, "t", instance=INSTANCE, member_classes=CLASSES, now=now
        )
        for member, name in ((OWNER, "Acme"), (PROVIDER, "Gov")):
            await registry.add_member(db, "t", member.member, name, now=now)
        await registry.add_subsystem(db, "t", PROVIDER, now=now)
        await registry.set_management_service_provider(db, "t", PROVIDER, now=now)
        await trust.add_approved_ca(
            db,
            "t",
            name="Real CA",
            top_ca=trust.CaInfo(
                ca.root.public_bytes(Encoding.DER),
                ocsp_url,
                ca.ocsp_cert.public_bytes(Encoding.DER),
            ),
            certificate_profile=PROFILE,
            now=now,
        )
    finally:
        await db.dispose()
    return config


async def _stored(config: CentralConfig) -> list[management.ManagementRequestView]:
    db = await open_database(config.db_url)
    try:
        return await management.list_management_requests(db)
    finally:
        await db.dispose()


async def _signers(ca: RealCa, *, auth_ocsp: bool = False):
    sign_cert, sign_key = await ca.issue(CertProfile.SIGN)
    owner = ManagementSigner(sign_key, sign_cert, await ca.ocsp(sign_cert))
    auth_cert, auth_key = await ca.issue(CertProfile.AUTH, SERVER.server_code)
    auth = ManagementSigner(
        auth_key, auth_cert, await ca.ocsp(auth_cert) if auth_ocsp else None
    )
    return owner, auth


async def _register(client, owner, auth, *, extra: bool):
    ctype, body, _ = signed_message(
        reg(auth),
        member=owner,
        auth=auth,
        extra_auth_ocsp=extra,
        message_id=str(uuid.uuid4()),
    )
    return await client.post(
        REGISTRATION_PATH, data=body, headers={"Content-Type": ctype}
    )


async def test_xroad_layout_is_accepted_after_asking_the_responder(
    aiohttp_client, tmp_path, ca
):
    config = await _central(tmp_path, ca, f"{ca.url}/ocsp")
    client = await aiohttp_client(make_registration_app(config))
    owner, auth = await _signers(ca)
    resp = await _register(client, owner, auth, extra=False)
    assert resp.status == 200, await resp.text()
    [stored] = await _stored(config)
    assert stored.request.auth_cert == auth.cert.public_bytes(Encoding.DER)
    assert stored.status.value == "pending"


async def test_xroad_layout_with_a_revoked_auth_cert_is_refused(
    aiohttp_client, tmp_path, ca
):
    config = await _central(tmp_path, ca, f"{ca.url}/ocsp")
    client = await aiohttp_client(make_registration_app(config))
    owner, auth = await _signers(ca)
    await ca.revoke(auth.cert)
    resp = await _register(client, owner, auth, extra=False)
    assert resp.status == 500
    fault = parse_fault(await resp.read())
    assert fault.faultcode == "Client.CertValidation", fault.faultstring
    assert "revoked" in fault.faultstring
    assert await _stored(config) == []


async def test_responder_down_is_refused_with_a_clear_fault(
    aiohttp_client, tmp_path, ca
):
    dead = _dead_url()
    config = await _central(tmp_path, ca, dead)
    client = await aiohttp_client(make_registration_app(config))
    owner, auth = await _signers(ca)
    resp = await _register(client, owner, auth, extra=False)
    assert resp.status == 500
    fault = parse_fault(await resp.read())
    assert fault.faultcode == "Server.NetworkError"
    assert f"OCSP responder {dead}" in fault.faultstring
    assert await _stored(config) == []


async def test_old_layout_with_the_extra_part_needs_no_lookup(
    aiohttp_client, tmp_path, ca
):
    # The responder URL in the registry is dead: only the extra part can
    # prove the status, and it is verified, not just accepted.
    config = await _central(tmp_path, ca, _dead_url())
    client = await aiohttp_client(make_registration_app(config))
    owner, auth = await _signers(ca, auth_ocsp=True)
    resp = await _register(client, owner, auth, extra=True)
    assert resp.status == 200, await resp.text()
    assert len(await _stored(config)) == 1

    other_owner, other_auth = await _signers(ca)
    await ca.revoke(other_auth.cert)
    revoked = ManagementSigner(
        other_auth.key, other_auth.cert, await ca.ocsp(other_auth.cert)
    )
    # Another server code is not needed: the first request is pending for a
    # different certificate, so this one is judged on its own proofs.
    resp = await _register(client, other_owner, revoked, extra=True)
    fault = parse_fault(await resp.read())
    assert fault.faultcode == "Client.CertValidation", fault.faultstring
    assert len(await _stored(config)) == 1
