"""The client's trust checks: every defect is refused with the right error.

Tokens come from the TSA core (``ca_tsa.tsa``) and are then damaged, or
re-signed after a change to their signed attributes, so each test isolates one
check. Real X-Road tokens from the shared vectors must verify.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import zipfile
from collections.abc import Callable

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca_tsa.tsa import TimestampAuthority
from jplink.errors import (
    CertificateExpired,
    CertificateValidationError,
    InvalidDigest,
    InvalidSignature,
    TimestampError,
    TimestampNonceMismatch,
)
from jplink.security.tsp import (
    build_timestamp_request,
    verify_timestamp_response,
    verify_timestamp_token,
)
from jplink.xml import parse_xml
from tests.conftest import FIXED_NOW

from .test_tsp_pki import Pki, make_pki

POLICY = "1.3.6.1.4.1.57264.1.1"
DATA = b"signature value bytes"
SERIAL = 0x0123456789ABCDEF


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def _authority(pki: Pki, cert: x509.Certificate | None = None) -> TimestampAuthority:
    return TimestampAuthority.create(
        tsa_cert=cert or pki.tsa,
        tsa_key=pki.tsa_key,
        chain=(pki.root,),
        policy_oid=POLICY,
        accuracy_ms=1000,
    )


def _token(pki: Pki, *, cert: x509.Certificate | None = None, nonce: int | None = 5):
    req = build_timestamp_request(DATA, nonce=nonce)
    resp = _authority(pki, cert).respond(req.der, serial=SERIAL, gen_time=FIXED_NOW)
    return req, resp


def test_good_token_verifies(pki):
    req, resp = _token(pki)
    result = verify_timestamp_response(resp, request=req, trusted_tsa_certs=[pki.root])
    assert result.serial == SERIAL


def test_nonce_mismatch(pki):
    _, resp = _token(pki, nonce=5)
    other = build_timestamp_request(DATA, nonce=6)
    with pytest.raises(TimestampNonceMismatch):
        verify_timestamp_response(resp, request=other, trusted_tsa_certs=[pki.root])


def test_missing_nonce_is_a_mismatch(pki):
    _, resp = _token(pki, nonce=None)
    other = build_timestamp_request(DATA, nonce=6)
    with pytest.raises(TimestampNonceMismatch):
        verify_timestamp_response(resp, request=other, trusted_tsa_certs=[pki.root])


def test_imprint_of_other_data_is_refused(pki):
    _, resp = _token(pki)
    other = build_timestamp_request(DATA + b"!", nonce=5)
    with pytest.raises(TimestampError, match="imprint"):
        verify_timestamp_response(resp, request=other, trusted_tsa_certs=[pki.root])


def test_pinned_imprint_algorithm(pki):
    req, resp = _token(pki)
    token = verify_timestamp_response(resp, request=req, trusted_tsa_certs=[pki.root])
    with pytest.raises(TimestampError, match="sha512"):
        verify_timestamp_token(
            token.token_der,
            digest=hashlib.sha256(DATA).digest(),
            hash_algorithm="sha256",
            trusted_tsa_certs=[pki.root],
        )


@pytest.mark.parametrize(
    ("now", "ok"),
    [
        (FIXED_NOW, True),
        (FIXED_NOW + dt.timedelta(minutes=4), True),
        (FIXED_NOW + dt.timedelta(minutes=6), False),  # stale response
        (FIXED_NOW - dt.timedelta(minutes=6), False),  # genTime in the future
    ],
)
def test_gen_time_against_now(pki, now, ok):
    req, resp = _token(pki)
    if ok:
        verify_timestamp_response(
            resp, request=req, trusted_tsa_certs=[pki.root], now=now
        )
    else:
        with pytest.raises(TimestampError, match="genTime"):
            verify_timestamp_response(
                resp, request=req, trusted_tsa_certs=[pki.root], now=now
            )


def test_tampered_tst_info_breaks_the_message_digest(pki):
    req, resp = _token(pki)
    serial = SERIAL.to_bytes(8, "big")
    assert resp.count(serial) == 1
    tampered = resp.replace(serial, (SERIAL + 1).to_bytes(8, "big"))
    with pytest.raises(InvalidDigest):
        verify_timestamp_response(tampered, request=req, trusted_tsa_certs=[pki.root])


def test_tampered_signature(pki):
    req, resp = _token(pki)
    tampered = resp[:-1] + bytes([resp[-1] ^ 1])  # the signature is last
    with pytest.raises(InvalidSignature):
        verify_timestamp_response(tampered, request=req, trusted_tsa_certs=[pki.root])


def test_untrusted_root(pki):
    req, resp = _token(pki)
    stranger = make_pki()
    with pytest.raises(CertificateValidationError, match="chain"):
        verify_timestamp_response(resp, request=req, trusted_tsa_certs=[stranger.root])


def test_no_certificate_to_verify_with(pki):
    req = build_timestamp_request(DATA, cert_req=False)
    resp = _authority(pki).respond(req.der, serial=1, gen_time=FIXED_NOW)
    with pytest.raises(CertificateValidationError):
        verify_timestamp_response(resp, request=req, trusted_tsa_certs=[pki.root])


EKU_CASES = [
    # (critical, usages, message)
    (False, (ExtendedKeyUsageOID.TIME_STAMPING,), "not critical"),
    (
        True,
        (ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.CODE_SIGNING),
        "exactly",
    ),
    (True, (ExtendedKeyUsageOID.SERVER_AUTH,), "exactly"),
    (True, None, "no extended key usage"),
]


@pytest.mark.parametrize(("critical", "usages", "message"), EKU_CASES)
def test_signer_needs_only_a_critical_timestamping_eku(pki, critical, usages, message):
    cert = pki.issue_tsa(critical=critical, usages=usages)
    req, resp = _token(pki, cert=cert)
    with pytest.raises(CertificateValidationError, match=message):
        verify_timestamp_response(resp, request=req, trusted_tsa_certs=[pki.root])


@pytest.mark.parametrize(
    ("not_before", "not_after"),
    [
        (FIXED_NOW - dt.timedelta(days=30), FIXED_NOW - dt.timedelta(seconds=1)),
        (FIXED_NOW + dt.timedelta(seconds=1), FIXED_NOW + dt.timedelta(days=30)),
    ],
)
def test_signer_must_be_valid_at_gen_time(pki, not_before, not_after):
    cert = pki.issue_tsa(not_before=not_before, not_after=not_after)
    req, resp = _token(pki, cert=cert)
    with pytest.raises(CertificateExpired):
        verify_timestamp_response(resp, request=req, trusted_tsa_certs=[pki.root])


# -- re-signed tokens: one signed attribute changed at a time ---------------------


def _resign(pki: Pki, token_der: bytes, change: Callable[[list], list]) -> bytes:
    info = cms.ContentInfo.load(token_der)
    signer = info["content"]["signer_infos"][0]
    attrs = change([cms.CMSAttribute.load(a.dump()) for a in signer["signed_attrs"]])
    signed_attrs = cms.CMSAttributes(attrs)
    signature = pki.tsa_key.sign(
        signed_attrs.dump(), padding.PKCS1v15(), hashes.SHA256()
    )
    new_signer = cms.SignerInfo(
        {
            "version": signer["version"].native,
            "sid": signer["sid"],
            "digest_algorithm": signer["digest_algorithm"],
            "signed_attrs": signed_attrs,
            "signature_algorithm": signer["signature_algorithm"],
            "signature": signature,
        }
    )
    signed = info["content"]
    return cms.ContentInfo(
        {
            "content_type": "signed_data",
            "content": cms.SignedData(
                {
                    "version": signed["version"].native,
                    "digest_algorithms": signed["digest_algorithms"],
                    "encap_content_info": signed["encap_content_info"],
                    "certificates": signed["certificates"],
                    "signer_infos": [new_signer],
                }
            ),
        }
    ).dump()


def _without(name: str) -> Callable[[list], list]:
    return lambda attrs: [a for a in attrs if a["type"].native != name]


def _replace(name: str, value: object) -> Callable[[list], list]:
    def change(attrs: list) -> list:
        return [
            cms.CMSAttribute({"type": name, "values": [value]})
            if a["type"].native == name
            else a
            for a in attrs
        ]

    return change


def _verify_token(pki: Pki, token_der: bytes):
    return verify_timestamp_token(token_der, data=DATA, trusted_tsa_certs=[pki.root])


@pytest.fixture
def token_der(pki):
    req, resp = _token(pki)
    return verify_timestamp_response(
        resp, request=req, trusted_tsa_certs=[pki.root]
    ).token_der


def test_resigning_unchanged_still_verifies(pki, token_der):
    assert _verify_token(pki, _resign(pki, token_der, lambda a: a)).serial == SERIAL


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (_without("signing_certificate_v2"), InvalidSignature, "ESS"),
        (_without("content_type"), InvalidSignature, "content-type"),
        (_without("message_digest"), InvalidSignature, "message-digest"),
        (_replace("content_type", "data"), InvalidSignature, "content-type"),
        (_replace("message_digest", b"\x00" * 32), InvalidDigest, "message-digest"),
        (
            _replace(
                "signing_certificate_v2",
                {"certs": [{"cert_hash": hashlib.sha256(b"other cert").digest()}]},
            ),
            InvalidSignature,
            "ESS",
        ),
        (lambda a: [*a, a[0]], TimestampError, "single-valued"),
    ],
)
def test_signed_attribute_defects(pki, token_der, change, error, message):
    with pytest.raises(error, match=message):
        _verify_token(pki, _resign(pki, token_der, change))


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"\x30\x00",
        b"garbage",
        cms.ContentInfo({"content_type": "data", "content": b"x"}).dump(),
    ],
)
def test_malformed_tokens(pki, junk):
    with pytest.raises(TimestampError):
        _verify_token(pki, junk)


def test_a_defect_in_a_field_no_check_reads_is_refused(pki, token_der):
    # SignedData.digestAlgorithms is read by no check: only the strict
    # decode of the whole token (not the fields' own reads) finds that its
    # AlgorithmIdentifier is not a SEQUENCE.
    algorithms = cms.ContentInfo.load(token_der)["content"]["digest_algorithms"]
    der = algorithms.dump()
    assert token_der.count(der) == 1 and der[2] == 0x30
    broken = token_der.replace(der, der[:2] + b"\x04" + der[3:])
    with pytest.raises(TimestampError, match="malformed TimeStampToken"):
        _verify_token(pki, broken)


def test_the_token_is_kept_as_received(pki):
    # The verified token is the response's bytes, not a re-encoding.
    req, resp = _token(pki)
    result = verify_timestamp_response(resp, request=req, trusted_tsa_certs=[pki.root])
    assert resp.endswith(result.token_der)


# -- real X-Road tokens ------------------------------------------------------------


def _xroad_tsa_cert(vectors) -> x509.Certificate:
    params = parse_xml((vectors / "asic-trust-DEV-shared-params.xml").read_bytes())
    pem = params.xpath("//*[local-name()='approvedTSA']/*[local-name()='cert']/text()")
    return x509.load_pem_x509_certificate(base64.b64decode(pem[0]))


def test_xroad_batch_timestamp_verifies(xroad_vectors):
    tsa = _xroad_tsa_cert(xroad_vectors)
    with zipfile.ZipFile(xroad_vectors / "asic-valid-batch-ts.asice") as z:
        token = z.read("META-INF/timestamp.tst")
        data = z.read("ts-hashchainresult.xml")
    result = verify_timestamp_token(token, data=data, trusted_tsa_certs=[tsa])
    assert result.gen_time == dt.datetime(2024, 12, 5, 7, 34, 14, tzinfo=dt.UTC)
    assert result.imprint.algorithm.hashlib_name == "sha512"
    assert result.tsa_cert == tsa
    with pytest.raises(TimestampError):
        verify_timestamp_token(token, data=data + b" ", trusted_tsa_certs=[tsa])
    with pytest.raises(CertificateValidationError):
        verify_timestamp_token(token, data=data, trusted_tsa_certs=[make_pki().root])


def test_xroad_single_timestamp_verifies(xroad_vectors):
    tsa = _xroad_tsa_cert(xroad_vectors)
    with zipfile.ZipFile(xroad_vectors / "asic-valid-signed-message.asice") as z:
        signatures = parse_xml(z.read("META-INF/signatures.xml"))
    value = signatures.xpath("//*[local-name()='SignatureValue']/text()")[0]
    token = signatures.xpath("//*[local-name()='EncapsulatedTimeStamp']/text()")[0]
    result = verify_timestamp_token(
        base64.b64decode(token),
        data=base64.b64decode(value),
        hash_algorithm="sha512",
        trusted_tsa_certs=[tsa],
    )
    assert result.policy
