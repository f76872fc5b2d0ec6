"""JP-LINK certificate profile, CSR checks, key policy (jplink.security.certs/keys)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jplink.errors import CertificateValidationError, ConfigurationError, InvalidRequest
from jplink.security.certs import (
    CertProfile,
    MemberSubject,
    build_subject_name,
    member_subject_from_certificate,
    random_serial_number,
    verify_csr,
    verify_csr_subject,
)
from jplink.security.keys import (
    KeyType,
    generate_private_key,
    load_private_key_pem,
    serialize_private_key_pem,
    verify_key_strength,
)
from tests.conftest import require_tool
from tests.support.pki import build_test_pki, make_csr, pem

ACME = MemberSubject("JP", "COM", "1234", "Acme KK", server_code="ss1")


def _name(**attrs: str) -> x509.Name:
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "CN": NameOID.COMMON_NAME,
        "serialNumber": NameOID.SERIAL_NUMBER,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs.items()])


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def test_sign_and_auth_subjects_follow_the_profile() -> None:
    sign = build_subject_name(CertProfile.SIGN, ACME)
    auth = build_subject_name(CertProfile.AUTH, ACME)
    assert sign.rfc4514_string() == "CN=1234,2.5.4.5=JP/COM/1234,O=Acme KK,C=JP"
    assert auth.rfc4514_string() == "CN=ss1,2.5.4.5=JP/COM/1234/ss1,O=Acme KK,C=JP"


def test_auth_subject_needs_server_code() -> None:
    with pytest.raises(InvalidRequest, match="server code"):
        build_subject_name(CertProfile.AUTH, MemberSubject("JP", "COM", "1", "A"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"member_code": "12/34"},  # '/' would make serialNumber ambiguous
        {"member_code": ""},
        {"member_class": "CO M"},
        {"instance": "J\u00e9"},
        {"server_code": "a" * 65},
        {"member_name": ""},
        {"member_name": "bad\nname"},
        {"member_name": "x" * 65},
    ],
)
def test_member_subject_rejects_bad_values(kwargs: dict[str, str]) -> None:
    base = {
        "instance": "JP",
        "member_class": "COM",
        "member_code": "1234",
        "member_name": "Acme",
    }
    with pytest.raises(InvalidRequest):
        MemberSubject(**{**base, **kwargs})


def test_member_subject_round_trips_through_a_certificate(now: dt.datetime) -> None:
    pki = build_test_pki(now)
    for profile in CertProfile:
        cert, _ = pki.issue(profile, ACME)
        got = member_subject_from_certificate(cert, profile)
        expected_server = ACME.server_code if profile is CertProfile.AUTH else None
        assert got == MemberSubject("JP", "COM", "1234", "Acme KK", expected_server)
    # A sign certificate is not an auth certificate.
    sign_cert, _ = pki.issue(CertProfile.SIGN, ACME)
    with pytest.raises(CertificateValidationError):
        member_subject_from_certificate(sign_cert, CertProfile.AUTH)
    with pytest.raises(CertificateValidationError):
        member_subject_from_certificate(pki.root.cert, CertProfile.SIGN)


def test_verify_csr_accepts_pem_and_der(rsa_key: rsa.RSAPrivateKey) -> None:
    pem_csr = make_csr(rsa_key, _name(CN="1234"))
    der_csr = x509.load_pem_x509_csr(pem_csr).public_bytes(Encoding.DER)
    for data in (pem_csr, der_csr):
        verified = verify_csr(data)
        assert verified.strength.key_type is KeyType.RSA
        assert verified.strength.bits == 2048


def test_verify_csr_accepts_p256_and_p384() -> None:
    for curve in (ec.SECP256R1(), ec.SECP384R1()):
        verified = verify_csr(make_csr(ec.generate_private_key(curve), _name(CN="1")))
        assert verified.strength.curve == curve.name


def test_verify_csr_rejects_bad_signature(rsa_key: rsa.RSAPrivateKey) -> None:
    der = bytearray(
        x509.load_pem_x509_csr(make_csr(rsa_key, _name(CN="1234"))).public_bytes(
            Encoding.DER
        )
    )
    der[-5] ^= 0x01  # inside the signature BIT STRING
    with pytest.raises(InvalidRequest, match="signature does not verify") as info:
        verify_csr(bytes(der))
    assert info.value.code == "InvalidCsr"


def test_verify_csr_rejects_rsa_1024() -> None:
    weak = rsa.generate_private_key(65537, 1024)
    with pytest.raises(InvalidRequest, match="1024 bits is too weak") as info:
        verify_csr(make_csr(weak, _name(CN="1")))
    assert info.value.code == "WeakKey"


def test_verify_csr_honours_a_higher_rsa_minimum(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(InvalidRequest, match="at least 3072"):
        verify_csr(make_csr(rsa_key, _name(CN="1")), min_rsa_bits=3072)


def test_verify_csr_rejects_other_key_types() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(CN="1"))
        .sign(key, None)
    )
    with pytest.raises(InvalidRequest, match="not accepted"):
        verify_csr(csr.public_bytes(Encoding.PEM))


def test_weak_curve_is_rejected() -> None:
    key = ec.generate_private_key(ec.SECP256K1()).public_key()
    with pytest.raises(InvalidRequest, match="secp256k1"):
        verify_key_strength(key)


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"hello",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
        b"-----END CERTIFICATE REQUEST-----\n",
        b"\x30\x03\x02\x01\x00",
    ],
)
def test_verify_csr_rejects_garbage(garbage: bytes) -> None:
    with pytest.raises(InvalidRequest) as info:
        verify_csr(garbage)
    assert info.value.code == "InvalidCsr"


@pytest.mark.parametrize(
    ("profile", "subject"),
    [
        (CertProfile.SIGN, _name(CN="1234")),
        (
            CertProfile.SIGN,
            _name(C="JP", O="Acme KK", serialNumber="JP/COM/1234", CN="1234"),
        ),
        (CertProfile.AUTH, _name(CN="ss1")),
        (
            CertProfile.AUTH,
            _name(O="Acme KK", CN="ss1", serialNumber="JP/COM/1234/ss1"),
        ),
    ],
)
def test_fitting_csr_subjects(
    rsa_key: rsa.RSAPrivateKey, profile: CertProfile, subject: x509.Name
) -> None:
    csr = verify_csr(make_csr(rsa_key, subject)).csr
    assert verify_csr_subject(csr, profile, ACME) == build_subject_name(profile, ACME)


@pytest.mark.parametrize(
    ("profile", "subject", "message"),
    [
        (CertProfile.SIGN, _name(CN="9999"), "does not match"),
        (CertProfile.SIGN, _name(CN="ss1"), "does not match"),
        (CertProfile.AUTH, _name(CN="1234"), "does not match"),
        (CertProfile.SIGN, _name(C="FI", CN="1234"), "does not match"),
        (CertProfile.SIGN, _name(O="Other", CN="1234"), "does not match"),
        (CertProfile.SIGN, _name(serialNumber="JP/COM/9", CN="1234"), "does not match"),
        (CertProfile.SIGN, _name(OU="x", CN="1234"), "not allowed"),
        (CertProfile.SIGN, _name(O="Acme KK"), "no CN"),
        (CertProfile.SIGN, x509.Name([]), "no CN"),
    ],
)
def test_unfitting_csr_subjects(
    rsa_key: rsa.RSAPrivateKey, profile: CertProfile, subject: x509.Name, message: str
) -> None:
    csr = verify_csr(make_csr(rsa_key, subject)).csr
    with pytest.raises(InvalidRequest, match=message) as info:
        verify_csr_subject(csr, profile, ACME)
    assert info.value.code == "InvalidSubject"


def test_repeated_and_multivalued_attributes_are_refused(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    cn = x509.NameAttribute(NameOID.COMMON_NAME, "1234")
    repeated = x509.Name([cn, cn])
    multi = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [cn, x509.NameAttribute(NameOID.COUNTRY_NAME, "JP")]
            )
        ]
    )
    for name in (repeated, multi):
        csr = verify_csr(make_csr(rsa_key, name)).csr
        with pytest.raises(InvalidRequest):
            verify_csr_subject(csr, CertProfile.SIGN, ACME)


def test_serial_numbers_are_random_positive_and_short_enough() -> None:
    serials = [random_serial_number() for _ in range(2000)]
    assert len(set(serials)) == len(serials)
    assert all(1 << 64 <= s < 1 << 159 for s in serials)
    # At most 20 octets in DER (RFC 5280 §4.1.2.2): a positive INTEGER < 2^159.
    assert max(s.bit_length() for s in serials) <= 159
    # Random high bits: the top bit of 159 is set in roughly half of them.
    top = sum(1 for s in serials if s >> 158)
    assert 800 < top < 1200


def test_end_entity_extensions(now: dt.datetime) -> None:
    pki = build_test_pki(now)
    auth, _ = pki.issue(CertProfile.AUTH, ACME)
    usage = auth.extensions.get_extension_for_class(x509.KeyUsage)
    assert (
        usage.critical
        and usage.value.digital_signature
        and usage.value.key_encipherment
    )
    assert not usage.value.content_commitment
    eku = auth.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.SERVER_AUTH,
    }
    sign, _ = pki.issue(CertProfile.SIGN, ACME)
    sign_usage = sign.extensions.get_extension_for_class(x509.KeyUsage).value
    assert sign_usage.content_commitment and not sign_usage.digital_signature
    for cert in (auth, sign):
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
        assert [d.access_location.value for d in aia.value] == [pki.ocsp_url]
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = pki.root.cert.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        )
        assert aki.key_identifier == ski.value.digest
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
        assert cert.not_valid_before_utc == now


def test_ec_auth_certificate_has_no_key_encipherment(now: dt.datetime) -> None:
    pki = build_test_pki(now, key_type=KeyType.EC)
    cert, _ = pki.issue(CertProfile.AUTH, ACME)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment


def test_validity_is_capped_by_the_issuer(now: dt.datetime) -> None:
    pki = build_test_pki(now, validity=dt.timedelta(days=10))
    cert, _ = pki.issue(CertProfile.SIGN, ACME, validity=dt.timedelta(days=365))
    assert cert.not_valid_after_utc == pki.root.cert.not_valid_after_utc


def test_private_key_pem_round_trip_and_garbage() -> None:
    key = generate_private_key(KeyType.EC)
    loaded = load_private_key_pem(serialize_private_key_pem(key))
    assert loaded.public_key() == key.public_key()
    with pytest.raises(ConfigurationError, match="somewhere"):
        load_private_key_pem(b"not a key", where="somewhere")
    with pytest.raises(ValueError):
        generate_private_key(KeyType.RSA, rsa_bits=1024)


@pytest.mark.parametrize("key_type", [KeyType.RSA, KeyType.EC])
@pytest.mark.parametrize("intermediate", [False, True])
def test_openssl_verifies_both_profiles(
    tmp_path: Path, now: dt.datetime, key_type: KeyType, intermediate: bool
) -> None:
    openssl = require_tool("openssl")
    pki = build_test_pki(now, intermediate=intermediate, key_type=key_type)
    files = pki.write(tmp_path)
    untrusted = ["-untrusted", str(files["intermediate"])] if intermediate else []
    attime = str(int((now + dt.timedelta(days=1)).timestamp()))
    for profile, purposes in (
        (CertProfile.AUTH, ("sslclient", "sslserver")),
        (CertProfile.SIGN, ("any",)),
    ):
        cert, _ = pki.issue(profile, ACME, key=rsa.generate_private_key(65537, 2048))
        path = tmp_path / f"{profile.value}.pem"
        path.write_bytes(pem(cert))
        for purpose in purposes:
            result = subprocess.run(
                [
                    openssl,
                    "verify",
                    "-CAfile",
                    str(files["root"]),
                    *untrusted,
                    "-purpose",
                    purpose,
                    "-attime",
                    attime,
                    str(path),
                ],
                capture_output=True,
                text=True,
            )
            assert result.returncode == 0, result.stdout + result.stderr
        text = subprocess.run(
            [openssl, "x509", "-in", str(path), "-noout", "-text"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert f"OCSP - URI:{pki.ocsp_url}" in text
        assert "X509v3 Subject Key Identifier" in text
        assert "X509v3 Authority Key Identifier" in text
        assert (
            "Signature Algorithm: "
            + (
                "sha256WithRSAEncryption"
                if key_type is KeyType.RSA
                else "ecdsa-with-SHA256"
            )
            in text
        )
        if profile is CertProfile.AUTH:
            assert (
                "X509v3 Key Usage: critical\n"
                "                Digital Signature, Key Encipherment" in text
            )
            assert (
                "TLS Web Client Authentication, TLS Web Server Authentication" in text
            )
        else:
            assert "X509v3 Key Usage: critical\n                Non Repudiation" in text
            assert "Extended Key Usage" not in text
        assert "serialNumber = JP/COM/1234" in text
