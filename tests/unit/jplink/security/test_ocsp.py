"""Client side of OCSP: build requests, parse and verify responses.

Responses here are produced independently of our responder: with
cryptography's ``OCSPResponseBuilder`` and with OpenSSL's own responder
(``openssl ocsp -index ... -respout``).
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jplink.errors import (
    CertificateValidationError,
    InvalidSignature,
    OcspError,
    OcspStale,
    OcspUnknownStatus,
    RevokedCertificate,
)
from jplink.security.ocsp import (
    OcspCertStatus,
    OcspResponseStatus,
    build_ocsp_request,
    parse_ocsp_response,
    verify_ocsp_response,
)
from tests.conftest import require_tool

HOUR = dt.timedelta(hours=1)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(
    cn: str,
    public_key,
    issuer: x509.Certificate | None,
    issuer_key,
    *,
    now: dt.datetime,
    ca: bool = False,
    eku: list[x509.ObjectIdentifier] | None = None,
    valid: tuple[dt.timedelta, dt.timedelta] = (
        dt.timedelta(days=-1),
        dt.timedelta(days=30),
    ),
    serial: int | None = None,
) -> x509.Certificate:
    """A minimal certificate for tests (self-signed when ``issuer`` is None)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.subject if issuer else _name(cn))
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now + valid[0])
        .not_valid_after(now + valid[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    """A CA, its delegated OCSP responder, a leaf, and a foreign CA."""

    now: dt.datetime
    ca_key: object
    ca: x509.Certificate
    ocsp_key: object
    ocsp: x509.Certificate
    leaf: x509.Certificate
    other_key: object
    other_ca: x509.Certificate


def make_pki(now: dt.datetime, *, key_type: str = "ec") -> Pki:
    def key():
        if key_type == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())

    ca_key, ocsp_key, leaf_key, other_key = key(), key(), key(), key()
    ca = make_cert("Test CA", ca_key.public_key(), None, ca_key, now=now, ca=True)
    responder = make_cert(
        "Test OCSP",
        ocsp_key.public_key(),
        ca,
        ca_key,
        now=now,
        eku=[ExtendedKeyUsageOID.OCSP_SIGNING],
    )
    leaf = make_cert("leaf", leaf_key.public_key(), ca, ca_key, now=now)
    other = make_cert(
        "Other CA", other_key.public_key(), None, other_key, now=now, ca=True
    )
    return Pki(now, ca_key, ca, ocsp_key, responder, leaf, other_key, other)


@pytest.fixture
def pki() -> Pki:
    # cryptography's OCSPResponseBuilder stamps producedAt with the real
    # clock (it takes no time argument), so these tests' "now" is the real
    # time too: a fixed date would put producedAt in its future once the
    # wall clock passes it.
    return make_pki(dt.datetime.now(dt.UTC).replace(microsecond=0))


def respond(
    pki: Pki,
    *,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    cert: x509.Certificate | None = None,
    signer: tuple[x509.Certificate, object] | None = None,
    include: list[x509.Certificate] | None = None,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | bool | None = True,
    nonce: bytes | None = None,
    by_key: bool = False,
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    """An independent response built with cryptography's OCSPResponseBuilder."""
    signer_cert, signer_key = signer or (pki.ocsp, pki.ocsp_key)
    this = this_update or pki.now - dt.timedelta(minutes=1)
    nxt = this + HOUR if next_update is True else next_update or None
    revoked = status is ocsp.OCSPCertStatus.REVOKED
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert or pki.leaf,
        issuer=pki.ca,
        algorithm=algorithm or hashes.SHA1(),
        cert_status=status,
        this_update=this,
        next_update=nxt,
        revocation_time=pki.now - 2 * HOUR if revoked else None,
        revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
    )
    encoding = (
        ocsp.OCSPResponderEncoding.HASH if by_key else ocsp.OCSPResponderEncoding.NAME
    )
    builder = builder.responder_id(encoding, signer_cert)
    for extra in [signer_cert] if include is None else include:
        builder = builder.certificates([extra])
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    signed = builder.sign(signer_key, hashes.SHA256())
    return signed.public_bytes(serialization.Encoding.DER)


def verify(pki: Pki, der: bytes, **kwargs):
    args = {"cert": pki.leaf, "issuer": pki.ca, "now": pki.now, "max_age": HOUR}
    args.update(kwargs)
    return verify_ocsp_response(der, **args)


# --- requests ---------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256()])
@pytest.mark.parametrize("nonce", [None, b"\x01" * 16])
def test_build_request_round_trips(pki: Pki, algorithm, nonce) -> None:
    der = build_ocsp_request(pki.leaf, pki.ca, hash_algorithm=algorithm, nonce=nonce)
    parsed = ocsp.load_der_ocsp_request(der)
    assert parsed.serial_number == pki.leaf.serial_number
    assert parsed.hash_algorithm.name == algorithm.name
    digest = hashes.Hash(type(algorithm)())
    digest.update(pki.ca.subject.public_bytes())
    assert parsed.issuer_name_hash == digest.finalize()
    if nonce is None:
        assert len(parsed.extensions) == 0
    else:
        assert (
            parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            == nonce
        )


def test_build_request_is_read_by_openssl(pki: Pki, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    req = tmp_path / "req.der"
    req.write_bytes(build_ocsp_request(pki.leaf, pki.ca, nonce=b"\xab" * 16))
    out = subprocess.run(
        [openssl, "ocsp", "-reqin", str(req), "-req_text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Hash Algorithm: sha256" in out
    serial = re.search(r"Serial Number: ([0-9A-F]+)", out)
    assert serial and int(serial.group(1), 16) == pki.leaf.serial_number
    assert "OCSP Nonce" in out
    assert "0410" + "AB" * 16 in re.sub(r"\s", "", out)


@pytest.mark.parametrize("nonce", [b"", b"x" * 129])
def test_build_request_refuses_bad_nonce(pki: Pki, nonce: bytes) -> None:
    with pytest.raises(ValueError):
        build_ocsp_request(pki.leaf, pki.ca, nonce=nonce)


# --- parsing ----------------------------------------------------------------


def test_parse_successful_response(pki: Pki) -> None:
    der = respond(pki, nonce=b"n" * 16)
    parsed = parse_ocsp_response(der)
    assert parsed.response_status is OcspResponseStatus.SUCCESSFUL
    assert parsed.der == der
    assert parsed.nonce == b"n" * 16
    assert parsed.certificates == (pki.ocsp,)
    (single,) = parsed.responses
    assert single.serial_number == pki.leaf.serial_number
    assert single.status is OcspCertStatus.GOOD
    assert single.hash_algorithm == "sha1"


def test_parse_error_response() -> None:
    parsed = parse_ocsp_response(b"\x30\x03\x0a\x01\x06")
    assert parsed.response_status is OcspResponseStatus.UNAUTHORIZED
    assert parsed.responses == ()


@pytest.mark.parametrize(
    "der", [b"", b"garbage", b"\x30\x03\x0a\x01", b"\x30\x80\x00\x00"]
)
def test_parse_garbage_raises_ocsp_error(der: bytes) -> None:
    with pytest.raises(OcspError):
        parse_ocsp_response(der)


# --- verification: accepted -------------------------------------------------


@pytest.mark.parametrize("by_key", [False, True])
def test_good_response_from_delegated_responder(pki: Pki, by_key: bool) -> None:
    der = respond(pki, by_key=by_key, nonce=b"k" * 20)
    result = verify(pki, der, nonce=b"k" * 20)
    assert result.status is OcspCertStatus.GOOD
    assert result.responder == pki.ocsp
    assert result.serial_number == pki.leaf.serial_number
    assert result.this_update == pki.now - dt.timedelta(minutes=1)
    assert result.next_update == result.this_update + HOUR
    assert result.der == der


def test_good_response_signed_by_the_ca_itself(pki: Pki) -> None:
    der = respond(pki, signer=(pki.ca, pki.ca_key), include=[])
    assert verify(pki, der).responder == pki.ca


def test_good_response_from_locally_trusted_responder(pki: Pki) -> None:
    # Not issued by the CA and without EKU, but configured locally (global conf).
    key = ec.generate_private_key(ec.SECP256R1())
    trusted = make_cert("Trusted OCSP", key.public_key(), None, key, now=pki.now)
    der = respond(pki, signer=(trusted, key), include=[])
    with pytest.raises(OcspError):
        verify(pki, der)
    assert verify(pki, der, trusted_responders=[trusted]).responder == trusted


def test_sha256_cert_id_and_no_next_update(pki: Pki) -> None:
    der = respond(pki, algorithm=hashes.SHA256(), next_update=None)
    result = verify(pki, der)
    assert result.next_update is None


# --- verification: rejected (table-driven) ----------------------------------


def _no_eku_responder(pki: Pki):
    key = ec.generate_private_key(ec.SECP256R1())
    return make_cert("No EKU", key.public_key(), pki.ca, pki.ca_key, now=pki.now), key


def _foreign_responder(pki: Pki):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert(
        "Foreign OCSP",
        key.public_key(),
        pki.other_ca,
        pki.other_key,
        now=pki.now,
        eku=[ExtendedKeyUsageOID.OCSP_SIGNING],
    )
    return cert, key


def _expired_responder(pki: Pki):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert(
        "Expired OCSP",
        key.public_key(),
        pki.ca,
        pki.ca_key,
        now=pki.now,
        eku=[ExtendedKeyUsageOID.OCSP_SIGNING],
        valid=(dt.timedelta(days=-30), dt.timedelta(days=-1)),
    )
    return cert, key


def _other_leaf(pki: Pki) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return make_cert("other leaf", key.public_key(), pki.ca, pki.ca_key, now=pki.now)


REJECTED = [
    (
        "revoked",
        lambda p: respond(p, status=ocsp.OCSPCertStatus.REVOKED),
        {},
        RevokedCertificate,
    ),
    (
        "unknown",
        lambda p: respond(p, status=ocsp.OCSPCertStatus.UNKNOWN),
        {},
        OcspUnknownStatus,
    ),
    ("no EKU", lambda p: respond(p, signer=_no_eku_responder(p)), {}, OcspError),
    (
        "foreign responder",
        lambda p: respond(p, signer=_foreign_responder(p)),
        {},
        OcspError,
    ),
    (
        "expired responder",
        lambda p: respond(p, signer=_expired_responder(p)),
        {},
        OcspError,
    ),
    ("other certificate", lambda p: respond(p, cert=_other_leaf(p)), {}, OcspError),
    ("nonce missing", lambda p: respond(p), {"nonce": b"a" * 16}, OcspError),
    (
        "nonce differs",
        lambda p: respond(p, nonce=b"b" * 16),
        {"nonce": b"a" * 16},
        OcspError,
    ),
    (
        "nextUpdate passed",
        lambda p: respond(p, this_update=p.now - 3 * HOUR),
        {"max_age": None},
        OcspStale,
    ),
    (
        "older than max_age",
        lambda p: respond(p, this_update=p.now - 2 * HOUR, next_update=p.now + HOUR),
        {},
        OcspStale,
    ),
    (
        "thisUpdate in the future",
        lambda p: respond(p, this_update=p.now + HOUR),
        {},
        OcspError,
    ),
    ("error status", lambda p: b"\x30\x03\x0a\x01\x03", {}, OcspError),
]


@pytest.mark.parametrize(
    ("make", "kwargs", "error"),
    [case[1:] for case in REJECTED],
    ids=[case[0] for case in REJECTED],
)
def test_rejected(pki: Pki, make, kwargs, error) -> None:
    with pytest.raises(error):
        verify(pki, make(pki), **kwargs)


def test_revoked_carries_time_and_reason(pki: Pki) -> None:
    with pytest.raises(RevokedCertificate) as info:
        verify(pki, respond(pki, status=ocsp.OCSPCertStatus.REVOKED))
    assert info.value.revoked_at == pki.now - 2 * HOUR
    assert info.value.reason == "key_compromise"


def test_stale_carries_max_age(pki: Pki) -> None:
    der = respond(pki, this_update=pki.now - 2 * HOUR, next_update=pki.now + HOUR)
    with pytest.raises(OcspStale) as info:
        verify(pki, der)
    assert info.value.max_age == HOUR


def test_small_clock_skew_is_tolerated(pki: Pki) -> None:
    der = respond(pki, this_update=pki.now + dt.timedelta(minutes=2))
    assert verify(pki, der).status is OcspCertStatus.GOOD


def test_wrong_issuer_given(pki: Pki) -> None:
    with pytest.raises(CertificateValidationError):
        verify(pki, respond(pki), issuer=pki.other_ca)


def _tamper(der: bytes, needle: bytes) -> bytes:
    index = der.index(needle)
    return der[:index] + bytes([der[index] ^ 0x01]) + der[index + 1 :]


def test_tampered_status_fails_signature(pki: Pki) -> None:
    der = respond(pki, nonce=b"t" * 16)
    tampered = _tamper(der, b"t" * 16)  # flip a bit of the signed nonce
    with pytest.raises(InvalidSignature):
        verify(pki, tampered)


def test_tampered_signature_fails(pki: Pki) -> None:
    der = respond(pki, signer=(pki.ca, pki.ca_key), include=[])
    decoded = ocsp.load_der_ocsp_response(der)
    tampered = _tamper(der, decoded.signature[-8:])
    with pytest.raises(InvalidSignature):
        verify(pki, tampered)


# --- responses produced by OpenSSL's own responder --------------------------


def _openssl_index_line(cert: x509.Certificate, revoked_at: str | None) -> str:
    expiry = cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    status, revocation = (
        ("R", f"{revoked_at},keyCompromise") if revoked_at else ("V", "")
    )
    subject = "/CN=" + cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    fields = [status, expiry, revocation, f"{cert.serial_number:X}", "unknown", subject]
    return "\t".join(fields) + "\n"


@pytest.fixture(scope="module")
def rsa_pki() -> Pki:
    # OpenSSL responder material: RSA like a default `jplink ca init`.
    return make_pki(dt.datetime.now(dt.UTC).replace(microsecond=0), key_type="rsa")


def _openssl_response(pki: Pki, tmp_path: Path, *, revoked: bool, digest: str) -> bytes:
    openssl = require_tool("openssl")
    pem = serialization.Encoding.PEM
    files = {
        "ca.pem": pki.ca.public_bytes(pem),
        "ocsp.pem": pki.ocsp.public_bytes(pem),
        "leaf.pem": pki.leaf.public_bytes(pem),
        "ocsp.key": pki.ocsp_key.private_bytes(  # type: ignore[attr-defined]
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    revoked_at = "201001000000Z" if revoked else None
    (tmp_path / "index.txt").write_text(_openssl_index_line(pki.leaf, revoked_at))
    req = tmp_path / "req.der"
    req.write_bytes(
        build_ocsp_request(
            pki.leaf,
            pki.ca,
            hash_algorithm=hashes.SHA1() if digest == "sha1" else hashes.SHA256(),
            nonce=b"o" * 16,
        )
    )
    resp = tmp_path / "resp.der"
    subprocess.run(
        [
            openssl, "ocsp", "-index", str(tmp_path / "index.txt"),
            "-CA", str(tmp_path / "ca.pem"), "-rsigner", str(tmp_path / "ocsp.pem"),
            "-rkey", str(tmp_path / "ocsp.key"), "-reqin", str(req),
            "-respout", str(resp), "-ndays", "1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return resp.read_bytes()


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_openssl_good_response_verifies(
    rsa_pki: Pki, tmp_path: Path, digest: str
) -> None:
    der = _openssl_response(rsa_pki, tmp_path, revoked=False, digest=digest)
    result = verify(rsa_pki, der, nonce=b"o" * 16, now=dt.datetime.now(dt.UTC))
    assert result.status is OcspCertStatus.GOOD
    assert result.responder == rsa_pki.ocsp


def test_openssl_revoked_response_raises(rsa_pki: Pki, tmp_path: Path) -> None:
    der = _openssl_response(rsa_pki, tmp_path, revoked=True, digest="sha256")
    with pytest.raises(RevokedCertificate) as info:
        verify(rsa_pki, der, nonce=b"o" * 16, now=dt.datetime.now(dt.UTC))
    assert info.value.revoked_at == dt.datetime(2020, 10, 1, tzinfo=dt.UTC)
    assert info.value.reason == "key_compromise"


def test_openssl_tampered_response_rejected(rsa_pki: Pki, tmp_path: Path) -> None:
    der = _openssl_response(rsa_pki, tmp_path, revoked=False, digest="sha1")
    tampered = _tamper(der, b"o" * 16)
    with pytest.raises(InvalidSignature):
        verify(rsa_pki, tampered, now=dt.datetime.now(dt.UTC))
    # A changed serial no longer names our certificate at all.
    serial = rsa_pki.leaf.serial_number.to_bytes(20, "big").lstrip(b"\x00")
    with pytest.raises((InvalidSignature, OcspError)):
        verify(rsa_pki, _tamper(der, serial), now=dt.datetime.now(dt.UTC))
