"""The batch signer: lone messages signed directly, waiting ones in one batch."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import pytest
from cryptography import x509

from jplink.errors import JPLinkError, NotFound
from jplink.identifiers import ClientId
from jplink.security.certs import CertProfile, MemberSubject
from jplink.security.keys import PrivateKey
from jplink.security.signature import SignedPart, verify_signature
from security_server.signer import BatchSigner
from tests.support.pki import build_test_pki

MEMBER = ClientId("JP-TEST", "COM", "1111")


@dataclass(frozen=True)
class Material:
    key: PrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    ocsp_ders: tuple[bytes, ...]


class FakeCertStatus:
    """Hands out one member's material; counts the calls; can refuse."""

    def __init__(self, material: Material) -> None:
        self.material = material
        self.calls = 0
        self.refuse = False

    async def signing_material(self, member: ClientId, *, now: dt.datetime) -> Material:
        self.calls += 1
        if self.refuse or member != MEMBER:
            raise NotFound("no signing certificate", code="CertNotFound")
        return self.material


@pytest.fixture(scope="module")
def material() -> Material:
    now = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    pki = build_test_pki(now)
    cert, key = pki.issue(
        CertProfile.SIGN, MemberSubject("JP-TEST", "COM", "1111", "Consumer")
    )
    return Material(key, cert, pki.chain, ())


def _parts(i: int) -> list[SignedPart]:
    return [SignedPart("/message.xml", f"<m>{i}</m>".encode())]


async def test_lone_message_is_signed_directly(
    material: Material, now: dt.datetime
) -> None:
    signer = BatchSigner(FakeCertStatus(material), clock=lambda: now)
    try:
        signed = await signer.sign(MEMBER.subsystem("client"), _parts(1))
    finally:
        await signer.close()
    assert signed.signature.hash_chain is None and signed.batch_size == 1
    verified = verify_signature(
        signed.signature.signature_xml, parts={"/message.xml": b"<m>1</m>"}, now=now
    )
    assert verified.signer_certificate == material.cert
    assert verified.hash_chain is None


async def test_waiting_messages_share_one_batch_signature(
    material: Material, now: dt.datetime
) -> None:
    status = FakeCertStatus(material)
    signer = BatchSigner(status, clock=lambda: now)
    try:
        results = await asyncio.gather(
            *(signer.sign(MEMBER, _parts(i)) for i in range(8))
        )
    finally:
        await signer.close()
    # All eight were queued before the worker ran: one batch, one signature,
    # one look-up of the signing material, a hash chain per message.
    assert [r.batch_size for r in results] == [8] * 8
    assert status.calls == 1
    batch = results
    assert len({r.signature.signature_xml for r in batch}) == 1
    assert len({r.signature.hash_chain for r in batch}) == 8
    for i, signed in enumerate(results):
        verified = verify_signature(
            signed.signature.signature_xml,
            parts={"/message.xml": f"<m>{i}</m>".encode()},
            hash_chain_result=signed.signature.hash_chain_result,
            hash_chain=signed.signature.hash_chain,
            now=now,
        )
        assert "/message.xml" in verified.signed_uris
    # A chain does not verify another message's bytes.
    with pytest.raises(JPLinkError):
        verify_signature(
            batch[0].signature.signature_xml,
            parts={"/message.xml": b"<m>2</m>"},
            hash_chain_result=batch[0].signature.hash_chain_result,
            hash_chain=batch[0].signature.hash_chain,
            now=now,
        )


async def test_without_batching_each_message_has_its_own_signature(
    material: Material, now: dt.datetime
) -> None:
    signer = BatchSigner(FakeCertStatus(material), clock=lambda: now, batching=False)
    try:
        results = await asyncio.gather(
            *(signer.sign(MEMBER, _parts(i)) for i in range(4))
        )
    finally:
        await signer.close()
    assert len({r.signature.signature_xml for r in results}) == 4
    assert all(r.signature.hash_chain is None for r in results)


async def test_no_material_fails_every_waiting_request_closed(
    material: Material, now: dt.datetime
) -> None:
    status = FakeCertStatus(material)
    status.refuse = True
    signer = BatchSigner(status, clock=lambda: now)
    try:
        outcomes = await asyncio.gather(
            *(signer.sign(MEMBER, _parts(i)) for i in range(3)), return_exceptions=True
        )
        assert all(
            isinstance(o, NotFound) and o.code == "CertNotFound" for o in outcomes
        )
        status.refuse = False  # the worker keeps serving after a failure
        assert (await signer.sign(MEMBER, _parts(9))).batch_size == 1
    finally:
        await signer.close()
