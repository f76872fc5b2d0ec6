"""Refusals end to end through the pair: the right X-Road fault, logged, and
the servers keep serving.

Each test starts the two servers of :mod:`.pair`, makes one thing wrong (a
tampered message, another member's signature, a revoked or unregistered
certificate, a stale OCSP response, a missing access right, a disabled
service, an expired global configuration, a malformed SOAP request) and
checks the fault code, that the fault was written to the application log,
and that a correct request still gets through afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from jplink.security.certs import CertProfile, MemberSubject, build_subject_name
from jplink.security.keys import (
    KeyType,
    generate_private_key,
    serialize_private_key_pem,
)
from jplink.security.ocsp import build_ocsp_request
from security_server import services
from security_server.models import MessageLogRecord
from security_server.ocsp_refresher import OcspRefresher
from security_server.peer_ocsp_client import fetch_from_responder
from tests.conftest import require_tool
from tests.support.pki import make_csr

from .pair import (
    Pair,
    fault_code,
    material_of,
    open_pair,
    real_now,
    save_global_configuration,
    send_as_peer,
    trades_request,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def pair(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[Pair]:
    async with open_pair(tmp_path, aiohttp_server) as opened:
        yield opened


def _logged(caplog: pytest.LogCaptureFixture, code: str) -> bool:
    return any(code in record.getMessage() for record in caplog.records)


async def _assert_serving(pair: Pair) -> None:
    status, _, body = await pair.post(
        trades_request(pair.a.subsystem, pair.b.subsystem)
    )
    assert status == 200, body.decode()


async def _refused(
    pair: Pair, caplog: pytest.LogCaptureFixture, expected: str, **kwargs: Any
) -> None:
    status, ctype, body = await pair.post(
        trades_request(pair.a.subsystem, pair.b.subsystem, **kwargs)
    )
    assert status == 500 and ctype.startswith("text/xml"), body.decode()
    assert fault_code(body) == expected, body.decode()
    assert _logged(caplog, expected)


async def test_tampered_message(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    material = await material_of(pair.a)
    soap = trades_request(pair.a.subsystem, pair.b.subsystem, day="2024-05-03")
    # Control: the same sender, untampered, is served.
    status, _, body = await send_as_peer(pair, soap, material)
    assert status == 200, body.decode()
    served = len(pair.stub.received)

    def flip(data: bytes) -> bytes:
        return data.replace(b"2024-05-03", b"2024-05-04", 1)

    status, _, body = await send_as_peer(pair, soap, material, tamper=flip)
    assert status == 500
    assert fault_code(body) == "Server.ServerProxy.InvalidSignatureValue"
    assert _logged(caplog, "Server.ServerProxy.InvalidSignatureValue")
    assert len(pair.stub.received) == served  # never forwarded
    await _assert_serving(pair)


async def test_wrong_signer(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    a, b = await material_of(pair.a), await material_of(pair.b)
    # A's TLS identity, but the message of A's subsystem signed with B's key.
    forged = dataclasses.replace(
        a,
        sign_key=b.sign_key,
        sign_cert=b.sign_cert,
        sign_chain=b.sign_chain,
        sign_ocsp=b.sign_ocsp,
    )
    soap = trades_request(pair.a.subsystem, pair.b.subsystem)
    status, _, body = await send_as_peer(pair, soap, forged)
    assert status == 500
    assert fault_code(body) == "Server.ServerProxy.IncorrectCertificate"
    assert _logged(caplog, "Server.ServerProxy.IncorrectCertificate")
    assert pair.stub.received == []
    await _assert_serving(pair)


async def _unregistered_identity(
    pair: Pair, tmp_path: Path
) -> tuple[Any, Any, Path, Path]:
    # A CA-issued, valid authentication certificate of member COM/1111 whose
    # hash the global configuration does not list.
    key = generate_private_key(KeyType.EC)
    subject = MemberSubject("JP-TEST", "COM", "1111", "Consumer Ltd", "rogue")
    cert = await pair.ca.issue(
        CertProfile.AUTH,
        subject,
        make_csr(key, build_subject_name(CertProfile.AUTH, subject)),
    )
    delay = (cert.not_valid_before_utc - real_now()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay + 0.01)
    cert_path, key_path = tmp_path / "unregistered.pem", tmp_path / "unregistered.key"
    cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(serialize_private_key_pem(key))
    return cert, key, cert_path, key_path


async def test_unregistered_auth_certificate(
    pair: Pair, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    openssl = require_tool("openssl")
    caplog.set_level(logging.WARNING)
    cert, key, cert_path, key_path = await _unregistered_identity(pair, tmp_path)
    material = dataclasses.replace(
        await material_of(pair.a),
        auth_chain=(cert, pair.ca.material.root_cert),
        auth_key=key,
    )
    soap = trades_request(pair.a.subsystem, pair.b.subsystem)
    status, _, body = await send_as_peer(pair, soap, material)
    assert status == 500
    assert fault_code(body) == "Server.ServerProxy.SslAuthenticationFailed"
    assert pair.stub.received == []

    # The same with an independent TLS client: whatever it sends, no service.
    root = tmp_path / "root.pem"
    root.write_bytes(pair.ca.material.root_cert.public_bytes(Encoding.PEM))
    request = (
        f"POST / HTTP/1.1\r\nHost: {pair.b.address}\r\n"
        "Content-Type: text/xml\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
    ).encode()
    proc = await asyncio.create_subprocess_exec(
        openssl, "s_client", "-connect", pair.b.address, "-cert", str(cert_path),
        "-key", str(key_path), "-CAfile", str(root), "-quiet", "-ign_eof",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(request), 30)
    assert b"HTTP/1.1 500" in out, (out, err)
    assert b"Server.ServerProxy.SslAuthenticationFailed" in out, out
    assert pair.stub.received == []
    assert _logged(caplog, "Server.ServerProxy.SslAuthenticationFailed")
    await _assert_serving(pair)


async def test_missing_access_right_and_disabled_service(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await _refused(pair, caplog, "Server.ServerProxy.AccessDenied", code="getBalance")
    assert pair.stub.received == []
    await _assert_serving(pair)
    wsdl_url = pair.stub_url.replace("/soap", "/wsdl")
    await services.set_description_enabled(
        pair.b.res.db, "test", pair.b.subsystem, wsdl_url, enabled=False,
        notice="Maintenance", now=real_now(),
    )  # fmt: skip
    await _refused(pair, caplog, "Server.ServerProxy.ServiceDisabled")
    assert len(pair.stub.received) == 1  # only the control request got through
    await services.set_description_enabled(
        pair.b.res.db, "test", pair.b.subsystem, wsdl_url, enabled=True, now=real_now()
    )
    await _assert_serving(pair)


async def test_revoked_signing_certificate(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await _assert_serving(pair)
    material = await material_of(pair.a)
    assert pair.a.sign_cert is not None
    await pair.ca.revoke(pair.a.sign_cert)
    refresher = OcspRefresher(
        pair.a.res.db,
        pair.a.config,
        pair.a.res.conf.loaded,
        on_change=pair.a.res.certstatus.invalidate,
    )
    report = await refresher.refresh_now(now=real_now())
    assert "revoked" in {o.status for o in report.outcomes}
    # A no longer signs for COM/1111.
    await _refused(pair, caplog, "Server.ClientProxy.CertValidation")

    # B refuses a message signed with the revoked certificate and its
    # (authentic) revoked OCSP response.
    issuer = pair.ca.material.root_cert
    der = await fetch_from_responder(
        pair.http,
        pair.ca.ocsp_url,
        build_ocsp_request(pair.a.sign_cert, issuer, hash_algorithm=hashes.SHA256()),
        timeout=5,
    )
    revoked = dataclasses.replace(material, sign_ocsp=(der,))
    soap = trades_request(pair.a.subsystem, pair.b.subsystem)
    status, _, body = await send_as_peer(pair, soap, revoked)
    assert status == 500
    assert fault_code(body) == "Server.ServerProxy.CertValidation"
    assert pair.stub.received[1:] == []
    assert _logged(caplog, "Server.ServerProxy.CertValidation")


async def test_stale_ocsp(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    # A's clock runs past ocspFreshnessSeconds (3600 s): its own responses,
    # fetched at the real time, are stale and it stops signing.
    pair.a.clock.offset = dt.timedelta(hours=2)
    await _refused(pair, caplog, "Server.ClientProxy.CertValidation")
    pair.a.clock.offset = dt.timedelta()
    await _assert_serving(pair)
    # B's clock runs ahead: the responses A sends (and serves on its OCSP
    # port) are stale for B, which refuses the peer.
    pair.b.clock.offset = dt.timedelta(hours=2)
    status, _, body = await pair.post(
        trades_request(pair.a.subsystem, pair.b.subsystem)
    )
    assert status == 500
    assert fault_code(body) == "Server.ServerProxy.SslAuthenticationFailed", body
    assert _logged(caplog, "Server.ServerProxy.SslAuthenticationFailed")
    pair.b.clock.offset = dt.timedelta()
    await _assert_serving(pair)


async def test_expired_global_configuration(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    past = real_now() - dt.timedelta(minutes=1)
    save_global_configuration(pair.a.config, pair.shared, past)
    await _refused(pair, caplog, "Server.ClientProxy.OutdatedGlobalConf")
    save_global_configuration(pair.a.config, pair.shared, pair.expire)
    await _assert_serving(pair)
    material = await material_of(pair.a)
    save_global_configuration(pair.b.config, pair.shared, past)
    soap = trades_request(pair.a.subsystem, pair.b.subsystem)
    status, _, body = await send_as_peer(pair, soap, material)
    assert status == 500
    assert fault_code(body) == "Server.ServerProxy.OutdatedGlobalConf"
    save_global_configuration(pair.b.config, pair.shared, pair.expire)
    await _assert_serving(pair)


@pytest.mark.parametrize(
    ("vector", "expected"),
    [
        ("soap-NEG-missing-body.xml", "Client.MissingBody"),
        ("soap-NEG-wrong-protocolVersion.xml", "Client.InvalidProtocolVersion"),
        ("soap-NEG-inconsistent-headers.xml", "Client.InconsistentHeaders"),
    ],
)
async def test_soap_negative_vectors(
    pair: Pair, xroad_vectors: Path, vector: str, expected: str
) -> None:
    status, _, body = await pair.post(
        (xroad_vectors / vector).read_bytes(), "text/xml; charset=utf-8"
    )
    assert status == 500
    assert fault_code(body) == expected
    async with pair.a.res.db.transaction() as session:
        logged = (await session.execute(select(MessageLogRecord))).scalars().all()
    assert logged == []  # nothing was signed or sent
    assert pair.stub.received == []
    await _assert_serving(pair)


async def test_unknown_service_of_provider(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await _refused(
        pair, caplog, "Server.ServerProxy.UnknownService", code="noSuchThing"
    )
    assert pair.stub.received == []
    await _assert_serving(pair)
