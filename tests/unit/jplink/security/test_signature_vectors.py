"""X-Road's own signatures: accept, reproduce byte for byte, reject tampering."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from jplink.errors import (
    InvalidDigest,
    InvalidSignature,
    MalformedMessage,
    XmlSecurityError,
)
from jplink.ns import NS_DS
from jplink.security.c14n import (
    CanonicalizationMethod,
    SignatureMethod,
    canonicalize,
    sign_octets,
)
from jplink.security.signature import (
    ReferenceKind,
    SignaturePolicy,
    SignedPart,
    sign_message,
    verify_signature,
)
from jplink.xml import parse_xml


def _read(vectors: Path, name: str) -> bytes:
    return (vectors / name).read_bytes()


@pytest.fixture
def sign0(xroad_vectors):
    return _read(xroad_vectors, "sig-sign-0.xml"), {
        "/message.xml": _read(xroad_vectors, "sig-message-0.xml")
    }


@pytest.fixture
def batch(xroad_vectors):
    return {
        "signature_xml": _read(xroad_vectors, "sig-batch-sig.xml"),
        "parts": {
            "/message.xml": _read(xroad_vectors, "sig-batch-message-1.xml"),
            "/attachment1": b"blaah",
        },
        "hash_chain_result": _read(xroad_vectors, "sig-batch-hash-chain-result.xml"),
        "hash_chain": _read(xroad_vectors, "sig-batch-hash-chain-1.xml"),
    }


@pytest.fixture
def consumer_key(xroad_vectors):
    return serialization.load_pem_private_key(
        _read(xroad_vectors, "pki-cyber-consumer.key"), None
    )


def _signature_value(doc: bytes) -> bytes:
    el = parse_xml(doc).find(f".//{{{NS_DS}}}SignatureValue")
    return base64.b64decode("".join(el.text.split()))


# -- positive vectors -------------------------------------------------------


def test_accepts_sign0(sign0, now):
    doc, parts = sign0
    result = verify_signature(doc, parts=parts, now=now)
    assert result.signing_time == dt.datetime(2017, 9, 8, 9, 15, 11, 580000, dt.UTC)
    assert result.signer_certificate.subject.rfc4514_string().startswith(
        "1.2.840.113549.1.9.1=aaa@bbb.ccc,CN=consumer"
    )
    assert [(r.uri, r.kind) for r in result.references] == [
        ("/message.xml", ReferenceKind.DATA),
        ("#signed-properties", ReferenceKind.SIGNED_PROPERTIES),
    ]
    assert result.references[0].digest == hashlib.sha512(parts["/message.xml"]).digest()
    assert result.signature_method is SignatureMethod.RSA_SHA512
    assert result.signature_value == _signature_value(doc)
    assert result.signed_uris == frozenset({"/message.xml"})
    assert result.hash_chain is None
    # The embedded OCSP response is the DER OCSPResponse (tag SEQUENCE).
    assert len(result.ocsp_responses) == 1
    assert result.ocsp_responses[0][:1] == b"\x30"


@pytest.mark.parametrize("name", ["sign0", "batch"])
def test_xroad_documents_are_recognised_by_their_shape(name, sign0, batch, now):
    # X-Road's own documents (CRLF written as &#13; in the digests and the
    # value) are learnt and then recognised, with the full verifier's result.
    from jplink.security.signature import SignatureShapes

    if name == "sign0":
        doc, parts = sign0
        args = {"signature_xml": doc, "parts": parts, "now": now}
    else:
        args = dict(batch)
    full = verify_signature(**args)
    shapes = SignatureShapes(learn_interval=0)
    assert verify_signature(**args, shapes=shapes) == full
    assert len(shapes) == 1
    learnt: list[object] = []
    shapes.learn = lambda *a: learnt.append(a)  # type: ignore[method-assign]
    assert verify_signature(**args, shapes=shapes) == full
    assert learnt == []  # recognised, not verified in full again


def test_accepts_batch_signature(batch):
    result = verify_signature(**batch)
    assert result.hash_chain is not None
    assert result.hash_chain.verified_refs == ("/attachment1", "/message.xml")
    assert result.references[0].kind is ReferenceKind.HASH_CHAIN_RESULT
    assert result.signed_uris == frozenset({"/message.xml", "/attachment1"})


def test_accepts_nonbatch_exclusive_c14n(xroad_vectors):
    result = verify_signature(
        _read(xroad_vectors, "sig-nonbatch-signatures.xml"),
        parts={
            "/message.xml": _read(xroad_vectors, "sig-nonbatch-message.rest"),
            "/attachment1": _read(xroad_vectors, "sig-nonbatch-attachment1.bin"),
        },
    )
    assert [r.uri for r in result.references[:2]] == ["/message.xml", "/attachment1"]
    assert result.signing_time == dt.datetime(2024, 7, 9, 7, 38, 53, tzinfo=dt.UTC)
    assert result.signed_uris == frozenset({"/message.xml", "/attachment1"})


# -- deterministic reproduction ---------------------------------------------


def test_signer_reproduces_sign0_byte_for_byte(sign0, consumer_key, xroad_vectors):
    doc, parts = sign0
    ocsp = verify_signature(doc, parts=parts).ocsp_responses
    cert = x509.load_pem_x509_certificate(
        _read(xroad_vectors, "pki-cyber-consumer.pem")
    )
    # The first signature of a signer is built as a tree (and makes the
    # template), the next ones are filled into the template: both must be
    # X-Road's document.
    for _ in range(3):
        produced = sign_message(
            [SignedPart("/message.xml", parts["/message.xml"], "text/xml")],
            key=consumer_key,
            cert=cert,
            ocsp_responses=ocsp,
            signing_time=dt.datetime(2017, 9, 8, 9, 15, 11, 580000, tzinfo=dt.UTC),
        )
        assert _signature_value(produced) == _signature_value(doc)
        # Beyond the value: the whole document is X-Road's, byte for byte.
        assert produced == doc


@pytest.mark.parametrize("name", ["sig-sign-0.xml", "sig-batch-sig.xml"])
def test_resigning_canonical_signed_info_reproduces_value(
    name, consumer_key, xroad_vectors
):
    doc = _read(xroad_vectors, name)
    signed_info = parse_xml(doc).find(f".//{{{NS_DS}}}SignedInfo")
    octets = canonicalize(signed_info, CanonicalizationMethod.C14N_10)
    assert octets.startswith(b'<ds:SignedInfo xmlns:asic="http://uri.etsi.org/02918/')
    value = sign_octets(consumer_key, SignatureMethod.RSA_SHA512, octets)
    assert value == _signature_value(doc)


# -- negatives derived from the vectors -------------------------------------


def _flip(data: bytes, needle: bytes, replacement: bytes) -> bytes:
    assert data.count(needle) >= 1, needle
    return data.replace(needle, replacement, 1)


def test_rejects_flipped_message_byte(sign0):
    doc, parts = sign0
    message = bytearray(parts["/message.xml"])
    message[len(message) // 2] ^= 0x01
    with pytest.raises(InvalidDigest) as info:
        verify_signature(doc, parts={"/message.xml": bytes(message)})
    assert info.value.code == "InvalidSignatureValue"


def test_rejects_changed_signed_info(sign0):
    doc, parts = sign0
    tampered = _flip(doc, b'Id="signature-reference-0"', b'Id="signature-reference-9"')
    with pytest.raises(InvalidSignature) as info:
        verify_signature(tampered, parts=parts)
    assert info.value.code == "InvalidSignatureValue"


def test_rejects_changed_reference_digest(sign0):
    doc, parts = sign0
    with pytest.raises(InvalidDigest):
        verify_signature(
            _flip(doc, b"<ds:DigestValue>ro", b"<ds:DigestValue>rO"), parts=parts
        )


def test_rejects_flipped_signature_value(sign0):
    doc, parts = sign0
    with pytest.raises(InvalidSignature) as info:
        verify_signature(_flip(doc, b"dSDbrxdQ", b"dSDbrxdR"), parts=parts)
    assert info.value.code == "InvalidSignatureValue"


def test_rejects_changed_signed_properties(sign0):
    doc, parts = sign0
    tampered = _flip(doc, b"09:15:11.580Z", b"09:15:11.581Z")
    with pytest.raises(InvalidDigest):
        verify_signature(tampered, parts=parts)


def test_rejects_swapped_certificate(sign0, xroad_vectors):
    doc, parts = sign0
    other = parse_xml(_read(xroad_vectors, "sig-nonbatch-signatures.xml"))
    other_cert = other.find(f".//{{{NS_DS}}}X509Certificate").text
    tampered = re.sub(
        rb"<ds:X509Certificate>.*?</ds:X509Certificate>",
        b"<ds:X509Certificate>" + other_cert.encode() + b"</ds:X509Certificate>",
        doc,
        flags=re.S,
    )
    with pytest.raises(InvalidSignature):
        verify_signature(tampered, parts=parts)


def test_rejects_duplicate_id_wrapping(sign0):
    doc, parts = sign0
    # Signature wrapping: a second, attacker-controlled element with the Id
    # the reference points at, hidden in the unsigned properties.
    decoy = (
        b'<xades:SignedProperties Id="signed-properties">'
        b"<xades:SignedSignatureProperties/></xades:SignedProperties>"
    )
    tampered = _flip(
        doc,
        b"<xades:UnsignedSignatureProperties>",
        b"<xades:UnsignedSignatureProperties>" + decoy,
    )
    with pytest.raises(MalformedMessage) as info:
        verify_signature(tampered, parts=parts)
    assert info.value.code == "MalformedSignature"


def test_rejects_reference_to_foreign_element(sign0):
    doc, parts = sign0
    # Point the SignedProperties reference at a different element.
    tampered = _flip(doc, b'URI="#signed-properties"', b'URI="#signature-value"')
    with pytest.raises(MalformedMessage):
        verify_signature(tampered, parts=parts)


def test_rejects_second_signature_in_container(sign0):
    doc, parts = sign0
    root = parse_xml(doc)
    root.append(etree.fromstring(etree.tostring(root[0])))
    with pytest.raises(MalformedMessage):
        verify_signature(etree.tostring(root), parts=parts)


@pytest.mark.parametrize(
    "uri",
    [
        b"http://www.w3.org/2000/09/xmldsig#sha1",
        b"http://example.invalid/unknown-digest",
    ],
)
def test_rejects_unknown_digest_algorithm(sign0, uri):
    doc, parts = sign0
    tampered = _flip(doc, b"http://www.w3.org/2001/04/xmlenc#sha512", uri)
    with pytest.raises(MalformedMessage) as info:
        verify_signature(tampered, parts=parts)
    assert info.value.code == "MalformedSignature"


def test_rejects_unknown_signature_method(sign0):
    doc, parts = sign0
    tampered = _flip(doc, b"xmldsig-more#rsa-sha512", b"xmldsig-more#rsa-md5")
    with pytest.raises(MalformedMessage):
        verify_signature(tampered, parts=parts)


def test_policy_can_refuse_sha256(sign0):
    doc, parts = sign0
    policy = SignaturePolicy(accepted_digests=frozenset())
    with pytest.raises(MalformedMessage):
        verify_signature(doc, parts=parts, policy=policy)


def test_rejects_unsigned_extra_part(sign0):
    doc, parts = sign0
    with pytest.raises(MalformedMessage) as info:
        verify_signature(doc, parts={**parts, "/attachment1": b"smuggled"})
    assert "/attachment1" in info.value.message


def test_rejects_missing_part(sign0):
    doc, _ = sign0
    with pytest.raises(MalformedMessage):
        verify_signature(doc, parts={})


def test_rejects_future_signing_time(sign0):
    doc, parts = sign0
    with pytest.raises(InvalidSignature):
        verify_signature(
            doc, parts=parts, now=dt.datetime(2017, 9, 8, 9, 0, tzinfo=dt.UTC)
        )


def test_rejects_garbage_and_dtd(sign0):
    _, parts = sign0
    with pytest.raises(MalformedMessage):
        verify_signature(b"<a/>", parts=parts)
    with pytest.raises(XmlSecurityError):
        verify_signature(b"not xml", parts=parts)
    with pytest.raises(XmlSecurityError):
        verify_signature(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', parts=parts)


def test_batch_rejects_tampered_attachment(batch):
    batch["parts"]["/attachment1"] = b"blaaH"
    with pytest.raises(InvalidDigest) as info:
        verify_signature(**batch)
    assert info.value.code == "MalformedSignature.InvalidHashChainRef"


def test_batch_rejects_unused_input(batch):
    batch["parts"]["/attachment2"] = b"extra"
    with pytest.raises(MalformedMessage) as info:
        verify_signature(**batch)
    assert info.value.code == "MalformedSignature.HashChainUnusedInputs"


def test_batch_rejects_tampered_result(batch):
    batch["hash_chain_result"] = batch["hash_chain_result"].replace(b"Vmeg", b"Vmeh")
    with pytest.raises(InvalidDigest):
        verify_signature(**batch)


def test_batch_requires_chain(batch):
    del batch["hash_chain"]
    with pytest.raises(MalformedMessage):
        verify_signature(**batch)
