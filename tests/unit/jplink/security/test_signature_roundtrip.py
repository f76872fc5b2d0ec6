"""Sign -> verify round trips with fresh keys, checked by xmlsec1 and openssl."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jplink.errors import InvalidDigest, InvalidSignature, MalformedMessage
from jplink.ns import NS_DS
from jplink.security.c14n import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    canonicalize,
)
from jplink.security.hashchain import HASH_CHAIN_RESULT_URI
from jplink.security.signature import (
    SignaturePolicy,
    SignedPart,
    sign_batch,
    sign_message,
    verify_signature,
)
from jplink.xml import parse_xml
from tests.conftest import require_tool

SIGNING_TIME = dt.datetime(2026, 11, 21, 8, 59, 30, 123456, tzinfo=dt.UTC)


def _make_signer(key, *, non_repudiation=True):
    """A CA and a signing certificate issued by it (both fresh)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JP-LINK Test, Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, "Test CA"),
        ]
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "JP-TEST/COM/1234"),
            x509.NameAttribute(NameOID.COMMON_NAME, "1234"),
        ]
    )
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=non_repudiation,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="module")
def ec_signer():
    # P-384 here (conftest's is P-256): both curves are signed and verified.
    return _make_signer(ec.generate_private_key(ec.SECP384R1()))


MESSAGE = "<env>aäõ 日本 &amp; \r\n</env>".encode()


def _parts(n_attachments: int, seed: int = 0) -> list[SignedPart]:
    parts = [SignedPart("/message.xml", MESSAGE + str(seed).encode())]
    for i in range(1, n_attachments + 1):
        parts.append(
            SignedPart(
                f"/attachment{i}",
                bytes([seed % 256, i]) * 50,
                "application/octet-stream",
            )
        )
    return parts


def test_round_trip_single(signer, now):
    key, cert = signer
    doc = sign_message(
        _parts(0),
        key=key,
        cert=cert,
        ocsp_responses=[b"\x30\x03\x0a\x01\x00"],
        signing_time=SIGNING_TIME,
    )
    result = verify_signature(doc, parts={"/message.xml": MESSAGE + b"0"}, now=now)
    assert result.signer_certificate == cert
    assert result.signing_time == SIGNING_TIME.replace(microsecond=123000)
    assert result.ocsp_responses == (b"\x30\x03\x0a\x01\x00",)
    expected = (
        SignatureMethod.ECDSA_SHA512
        if isinstance(key, ec.EllipticCurvePrivateKey)
        else SignatureMethod.RSA_SHA512
    )
    assert result.signature_method is expected


def test_round_trip_with_attachments_and_extra_cert(signer, rsa_signer):
    key, cert = signer
    parts = _parts(3)
    doc = sign_message(
        parts,
        key=key,
        cert=cert,
        signing_time=SIGNING_TIME,
        extra_certificates=[rsa_signer[1]],
    )
    result = verify_signature(doc, parts={p.uri: p.data for p in parts})
    assert result.signed_uris == {p.uri for p in parts}
    assert result.extra_certificates == (
        rsa_signer[1].public_bytes(serialization.Encoding.DER),
    )
    # Dropping an attachment from the input is not an acceptable subset.
    with pytest.raises(MalformedMessage):
        verify_signature(doc, parts={p.uri: p.data for p in parts[:2]})


def test_sha256_policy_round_trip(rsa_signer):
    key, cert = rsa_signer
    policy = SignaturePolicy(digest_algorithm=DigestAlgorithm.SHA256)
    doc = sign_message(
        _parts(0), key=key, cert=cert, signing_time=SIGNING_TIME, policy=policy
    )
    assert b"xmldsig-more#rsa-sha256" in doc and b"sha1" not in doc
    verify_signature(doc, parts={"/message.xml": MESSAGE + b"0"})


def test_requires_non_repudiation():
    key, cert = _make_signer(
        ec.generate_private_key(ec.SECP256R1()), non_repudiation=False
    )
    doc = sign_message(_parts(0), key=key, cert=cert, signing_time=SIGNING_TIME)
    with pytest.raises(MalformedMessage):
        verify_signature(doc, parts={"/message.xml": MESSAGE + b"0"})
    relaxed = SignaturePolicy(require_non_repudiation=False)
    verify_signature(doc, parts={"/message.xml": MESSAGE + b"0"}, policy=relaxed)


def test_relative_namespace_uri_is_a_malformed_signature(rsa_signer):
    # C14N 1.0 has no canonical form for a relative namespace URI; lxml
    # raises C14NError, which must reach the peer as MalformedSignature.
    key, cert = rsa_signer
    doc = sign_message(_parts(0), key=key, cert=cert, signing_time=SIGNING_TIME)
    bad = doc.replace(b'xmlns:xsi="http://', b'xmlns:xsi="#ttp://', 1)
    assert bad != doc
    with pytest.raises(MalformedMessage) as caught:
        verify_signature(bad, parts={"/message.xml": MESSAGE + b"0"})
    assert caught.value.code == "MalformedSignature"


def test_signing_misuse_is_a_value_error(rsa_signer, ec_signer):
    key, cert = rsa_signer
    with pytest.raises(ValueError):
        sign_message(_parts(0), key=ec_signer[0], cert=cert, signing_time=SIGNING_TIME)
    with pytest.raises(ValueError):
        sign_message(
            _parts(0),
            key=key,
            cert=cert,
            signing_time=SIGNING_TIME.replace(tzinfo=None),
        )
    with pytest.raises(ValueError):
        sign_message([], key=key, cert=cert, signing_time=SIGNING_TIME)
    with pytest.raises(ValueError):
        SignedPart("message.xml", b"")


@pytest.mark.parametrize("n_messages", [1, 2, 3, 10])
def test_batch_round_trip(signer, n_messages):
    key, cert = signer
    messages = [_parts(i % 3, seed=i) for i in range(n_messages)]
    if n_messages == 1:
        messages = [_parts(2)]
    out = sign_batch(messages, key=key, cert=cert, signing_time=SIGNING_TIME)
    assert len(out) == len(messages)
    assert len({o.signature_xml for o in out}) == 1  # signed once
    for message, signed in zip(messages, out, strict=True):
        parts = {p.uri: p.data for p in message}
        result = verify_signature(
            signed.signature_xml,
            parts=parts,
            hash_chain_result=signed.hash_chain_result,
            hash_chain=signed.hash_chain,
        )
        assert result.references[0].uri == HASH_CHAIN_RESULT_URI
        assert result.signed_uris == set(parts)
    # Another message's chain does not prove this message.
    if n_messages > 1:
        with pytest.raises((InvalidDigest, MalformedMessage)):
            verify_signature(
                out[0].signature_xml,
                parts={p.uri: p.data for p in messages[0]},
                hash_chain_result=out[1].hash_chain_result,
                hash_chain=out[1].hash_chain,
            )


def test_batch_of_one_plain_message_is_signed_directly(rsa_signer):
    key, cert = rsa_signer
    (signed,) = sign_batch([_parts(0)], key=key, cert=cert, signing_time=SIGNING_TIME)
    assert signed.hash_chain is None and signed.hash_chain_result is None
    verify_signature(signed.signature_xml, parts={"/message.xml": MESSAGE + b"0"})


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(message=st.binary(max_size=2048), attachment=st.none() | st.binary(max_size=512))
def test_random_bytes_round_trip(ec_signer, message, attachment):
    key, cert = ec_signer
    parts = [SignedPart("/message.xml", message)]
    if attachment is not None:
        parts.append(SignedPart("/attachment1", attachment))
    doc = sign_message(parts, key=key, cert=cert, signing_time=SIGNING_TIME)
    given_parts = {p.uri: p.data for p in parts}
    verify_signature(doc, parts=given_parts)
    tampered = {**given_parts, "/message.xml": message + b"\x00"}
    with pytest.raises(InvalidSignature):
        verify_signature(doc, parts=tampered)


# -- independent verifiers --------------------------------------------------


def _write_pem(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _xmlsec_verify(tmp_path: Path, doc: bytes, cert, parts: dict[str, bytes]):
    xmlsec1 = require_tool("xmlsec1")
    (tmp_path / "sig.xml").write_bytes(doc)
    args = [
        xmlsec1,
        "--verify",
        "--pubkey-cert-pem",
        str(_write_pem(tmp_path / "signer.pem", cert)),
        "--id-attr:Id",
        "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
    ]
    for i, (uri, data) in enumerate(parts.items()):
        (tmp_path / f"part{i}").write_bytes(data)
        args += [f"--url-map:{uri}", str(tmp_path / f"part{i}")]
    return subprocess.run(
        [*args, str(tmp_path / "sig.xml")], capture_output=True, text=True
    )


@pytest.mark.parametrize("n_attachments", [0, 2])
def test_xmlsec1_verifies_our_signature(signer, tmp_path, n_attachments):
    key, cert = signer
    parts = {p.uri: p.data for p in _parts(n_attachments)}
    doc = sign_message(
        _parts(n_attachments), key=key, cert=cert, signing_time=SIGNING_TIME
    )
    ok = _xmlsec_verify(tmp_path, doc, cert, parts)
    assert ok.returncode == 0, ok.stderr
    assert f"References (ok/all): {n_attachments + 2}/{n_attachments + 2}" in ok.stderr
    # And xmlsec1 is not a rubber stamp: a changed message fails there too.
    bad = _xmlsec_verify(tmp_path, doc, cert, {**parts, "/message.xml": b"<x/>"})
    assert bad.returncode != 0


def test_xmlsec1_verifies_template_filled_signatures(signer, tmp_path):
    # A signer's first single-part document makes its template; the later
    # ones are filled into it. xmlsec1 checks those later ones.
    key, cert = signer
    for seed in range(3):
        parts = _parts(0, seed=seed)
        doc = sign_message(
            parts,
            key=key,
            cert=cert,
            signing_time=SIGNING_TIME + dt.timedelta(seconds=seed),
        )
        ok = _xmlsec_verify(tmp_path, doc, cert, {p.uri: p.data for p in parts})
        assert ok.returncode == 0, ok.stderr
        assert "References (ok/all): 2/2" in ok.stderr
        bad = _xmlsec_verify(tmp_path, doc, cert, {"/message.xml": b"<x/>"})
        assert bad.returncode != 0


def test_xmlsec1_verifies_batch_signature(rsa_signer, tmp_path):
    key, cert = rsa_signer
    out = sign_batch(
        [_parts(1, seed=i) for i in range(2)],
        key=key,
        cert=cert,
        signing_time=SIGNING_TIME,
    )
    ok = _xmlsec_verify(
        tmp_path,
        out[0].signature_xml,
        cert,
        {HASH_CHAIN_RESULT_URI: out[0].hash_chain_result},
    )
    assert ok.returncode == 0, ok.stderr


def test_openssl_verifies_signed_info(rsa_signer, tmp_path):
    openssl = require_tool("openssl")
    key, cert = rsa_signer
    doc = sign_message(_parts(0), key=key, cert=cert, signing_time=SIGNING_TIME)
    root = parse_xml(doc)
    signed_info = root.find(f".//{{{NS_DS}}}SignedInfo")
    value = verify_signature(
        doc, parts={"/message.xml": MESSAGE + b"0"}
    ).signature_value
    (tmp_path / "si.bin").write_bytes(
        canonicalize(signed_info, CanonicalizationMethod.C14N_10)
    )
    (tmp_path / "sig.bin").write_bytes(value)
    (tmp_path / "pub.pem").write_bytes(
        cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    proc = subprocess.run(
        [
            openssl,
            "dgst",
            "-sha512",
            "-verify",
            str(tmp_path / "pub.pem"),
            "-signature",
            str(tmp_path / "sig.bin"),
            str(tmp_path / "si.bin"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "Verified OK" in proc.stdout, proc.stderr
