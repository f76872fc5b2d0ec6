"""OCSP for peers (port 5577), peer verification and signer checks against a live CA.

The 5577 answers are checked with ``openssl ocsp -respin`` as the independent
verifier.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import delete, select

from jplink.errors import (
    CertificateValidationError,
    OcspError,
    OcspStale,
    RevokedCertificate,
)
from jplink.protocol.ocsp_peers import build_ocsp_peer_request, parse_ocsp_peer_response
from jplink.security.certs import CertProfile, MemberSubject, build_subject_name
from jplink.security.keys import KeyType, generate_private_key
from jplink.security.ocsp import build_ocsp_request
from security_server.certstatus import CertificateStatus
from security_server.db import open_database
from security_server.models import OcspResponse
from security_server.ocsp_cache import cert_sha256, store_response
from security_server.ocsp_peers_app import make_ocsp_peers_app
from security_server.peer_ocsp_client import fetch_from_responder
from tests.conftest import require_tool
from tests.support.pki import build_test_pki, make_csr

from .helpers import INSTANCE, OTHER, OWNER, OWNER_NAME, PROVIDER_SUB, SUBSYSTEM
from .test_certstatus_world import SS1, SS2, World, real_now, world

__all__ = ["world"]


async def _openssl(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        require_tool("openssl"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


@pytest.mark.openssl
async def test_5577_serves_cached_responses_that_openssl_verifies(
    world: World, aiohttp_client: Any, tmp_path: Path
) -> None:
    await world.refresher.refresh_now(now=real_now())
    client = await aiohttp_client(make_ocsp_peers_app(world.config))
    certs = [world.auth_cert, world.sign_cert]
    resp = await client.get(
        build_ocsp_peer_request(certs), headers={"Accept": "multipart/related"}
    )
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith(
        'multipart/related; type="application/ocsp-response"'
    )
    ders = parse_ocsp_peer_response(
        await resp.read(), resp.headers["Content-Type"], expected=2
    )
    root = tmp_path / "root.pem"
    root.write_bytes(world.material.root_cert.public_bytes(Encoding.PEM))
    for index, (cert, der) in enumerate(zip(certs, ders, strict=True)):
        cert_file = tmp_path / f"cert{index}.pem"
        cert_file.write_bytes(cert.public_bytes(Encoding.PEM))
        resp_file = tmp_path / f"resp{index}.der"
        resp_file.write_bytes(der)
        code, out = await _openssl(
            "ocsp", "-respin", str(resp_file), "-issuer", str(root), "-sha256",
            "-cert", str(cert_file), "-CAfile", str(root),
        )  # fmt: skip
        assert code == 0, out
        assert "Response verify OK" in out
        assert f"{cert_file}: good" in out

    # An X-Road 7.0 client names certificates by SHA-1 only.
    sha1 = hashlib.sha1(
        world.auth_cert.public_bytes(Encoding.DER), usedforsecurity=False
    ).hexdigest()
    resp = await client.get(f"/?cert={sha1}")
    assert resp.status == 200
    only = parse_ocsp_peer_response(
        await resp.read(), resp.headers["Content-Type"], expected=1
    )
    assert only == (ders[0],)

    # A certificate without a cached response: 500, never a partial answer.
    resp = await client.get(build_ocsp_peer_request([world.auth_cert, world.peer_cert]))
    assert resp.status == 500
    assert (await client.get("/?cert=zz")).status == 400
    assert (await client.get("/")).status == 400
    assert (await client.head("/")).status == 200


async def _peer_app(
    world: World, aiohttp_server: Any, tmp_path: Path
) -> tuple[Any, CertificateStatus]:
    """The peer ss2's OCSP-for-peers service, with its own cache."""
    url = f"sqlite:///{tmp_path / 'peer.db'}"
    peer_db = await open_database(url)
    try:
        request = build_ocsp_request(
            world.peer_cert, world.material.root_cert, hash_algorithm=hashes.SHA256()
        )
        async with aiohttp.ClientSession() as http:
            der = await fetch_from_responder(
                http, world.ca.ocsp_url, request, timeout=5
            )
        async with peer_db.transaction() as session:
            await store_response(session, world.peer_cert, der, now=real_now())
    finally:
        await peer_db.dispose()
    peer = await aiohttp_server(
        make_ocsp_peers_app(dataclasses.replace(world.config, database_url=url))
    )
    status = CertificateStatus(
        world.server.db, world.config, world.login, world.conf, peer_ocsp_port=peer.port
    )
    return peer, status


async def _forget(world: World, cert_hash: str) -> None:
    async with world.server.db.transaction() as session:
        await session.execute(
            delete(OcspResponse).where(OcspResponse.cert_sha256 == cert_hash)
        )


async def test_verify_peer_fetches_from_5577_then_caches(
    world: World, aiohttp_server: Any, tmp_path: Path
) -> None:
    peer, status = await _peer_app(world, aiohttp_server, tmp_path)
    der = world.peer_cert.public_bytes(Encoding.DER)
    digest = cert_sha256(world.peer_cert)
    identity = await status.verify_peer(
        der, now=real_now(), expected_server=SS2, expected_client=PROVIDER_SUB
    )
    assert identity.server_id == SS2
    assert identity.certificate == world.peer_cert
    async with world.server.db.transaction() as session:
        cached = await session.scalar(
            select(OcspResponse.response_der).where(OcspResponse.cert_sha256 == digest)
        )
    assert cached == identity.ocsp.der

    # From the cache, with the peer gone.
    await peer.close()
    again = await status.verify_peer(der, now=real_now(), expected_client=OTHER)
    assert again.ocsp.der == identity.ocsp.der

    # Neither cache nor peer: the CA's responder answers.
    await _forget(world, digest)
    third = await status.verify_peer(der, now=real_now(), expected_server=SS2)
    assert third.server_id == SS2

    with pytest.raises(CertificateValidationError) as wrong:
        await status.verify_peer(der, now=real_now(), expected_server=SS1)
    assert wrong.value.code == "SslAuthenticationFailed"
    assert wrong.value.detail["reason"] == "WrongServer"


async def test_verify_peer_refusals(world: World) -> None:
    # Registered nowhere: refused before any download.
    key = generate_private_key(KeyType.EC)
    subject = MemberSubject(INSTANCE, "COM", "2222", "Provider Ltd", "rogue")
    rogue = await world.ca.issue(
        CertProfile.AUTH,
        subject,
        make_csr(key, build_subject_name(CertProfile.AUTH, subject)),
    )
    await asyncio.sleep(
        max(0.0, (rogue.not_valid_before_utc - real_now()).total_seconds()) + 0.01
    )
    with pytest.raises(CertificateValidationError) as unregistered:
        await world.status.verify_peer(rogue.public_bytes(Encoding.DER), now=real_now())
    assert unregistered.value.code == "SslAuthenticationFailed"
    assert unregistered.value.detail["reason"] == "UnregisteredCertificate"

    with pytest.raises(CertificateValidationError) as garbage:
        await world.status.verify_peer(b"\x30\x03\x02\x01\x00", now=real_now())
    assert garbage.value.detail["reason"] == "MalformedCertificate"

    # Revoked at the CA: the downloaded answer is refused.
    await world.ca.revoke(world.peer_cert)
    with pytest.raises(CertificateValidationError) as revoked:
        await world.status.verify_peer(
            world.peer_cert.public_bytes(Encoding.DER), now=real_now()
        )
    assert revoked.value.code == "SslAuthenticationFailed"
    assert isinstance(revoked.value.__cause__, RevokedCertificate)


async def test_check_signer(world: World) -> None:
    current = real_now()
    await world.refresher.refresh_now(now=current)
    material = await world.status.signing_material(OWNER, now=current)
    await world.status.check_signer(
        material.cert, material.ocsp_ders, SUBSYSTEM, now=current
    )

    with pytest.raises(CertificateValidationError) as wrong_member:
        await world.status.check_signer(
            material.cert, material.ocsp_ders, PROVIDER_SUB, now=current
        )
    assert wrong_member.value.code == "IncorrectCertificate"

    with pytest.raises(OcspError):
        await world.status.check_signer(material.cert, [], OWNER, now=current)
    with pytest.raises(OcspStale):
        await world.status.check_signer(
            material.cert,
            material.ocsp_ders,
            OWNER,
            now=current + dt.timedelta(hours=2),
        )

    # An authentication certificate cannot sign.
    auth = await world.status.auth_material(now=current)
    with pytest.raises(CertificateValidationError) as not_signing:
        await world.status.check_signer(auth.cert, auth.ocsp_ders, OWNER, now=current)
    assert not_signing.value.code == "MalformedSignature"

    # A certificate of a CA the configuration does not approve.
    foreign = build_test_pki(current - dt.timedelta(hours=1), key_type=KeyType.EC)
    stranger, _key = foreign.issue(
        CertProfile.SIGN, MemberSubject(INSTANCE, "COM", "1111", OWNER_NAME)
    )
    with pytest.raises(CertificateValidationError, match="does not chain"):
        await world.status.check_signer(
            stranger, material.ocsp_ders, OWNER, now=current
        )

    # Revoked: an authentic "revoked" wins over an older "good".
    await world.ca.revoke(material.cert)
    request = build_ocsp_request(
        material.cert, world.material.root_cert, hash_algorithm=hashes.SHA256()
    )
    async with aiohttp.ClientSession() as http:
        revoked = await fetch_from_responder(
            http, world.ca.ocsp_url, request, timeout=5
        )
    with pytest.raises(RevokedCertificate):
        await world.status.check_signer(
            material.cert, [*material.ocsp_ders, revoked], OWNER, now=real_now()
        )
