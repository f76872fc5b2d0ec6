"""Signed management requests: build the multipart, verify it, refuse forgeries."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ca_tsa.ocsp.responder import GOOD, UNKNOWN, CertStatusAnswer
from jplink.errors import (
    CertificateValidationError,
    InvalidRequest,
    InvalidSignature,
    MalformedMessage,
    OcspError,
    OcspStale,
    OcspUnknownStatus,
    RevokedCertificate,
)
from jplink.protocol import build_multipart, parse_multipart, parse_soap_message
from jplink.protocol.management import (
    SIGNATURE_ALGORITHM_HEADER,
    ManagementRequest,
    ManagementRequestType,
    ManagementSignatureAlgorithm,
    auth_cert_status_query,
    build_management_message,
    verify_management_request,
)
from jplink.protocol.mime import MimePart, parse_content_type
from jplink.security.ocsp import OcspCertStatus
from tests.conftest import require_tool

from .test_management_helpers import (
    OTHER,
    OWNER,
    PROVIDER,
    SERVER,
    MgmtPki,
    build_mgmt_pki,
    signed_message,
)

T = ManagementRequestType
SUB = OWNER.subsystem("sub1")
REVOKED = CertStatusAnswer(
    OcspCertStatus.REVOKED,
    revoked_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    reason=x509.ReasonFlags.key_compromise,
)


@pytest.fixture(scope="module")
def mp() -> MgmtPki:
    from tests.conftest import FIXED_NOW

    return build_mgmt_pki(FIXED_NOW)


@pytest.fixture(scope="module")
def owner(mp):
    return mp.member(OWNER)


@pytest.fixture(scope="module")
def auth(mp):
    return mp.auth(SERVER)


def _reg(auth) -> ManagementRequest:
    der = auth.cert.public_bytes(Encoding.DER)
    return ManagementRequest(T.AUTH_CERT_REG, SERVER, address="ss1.jp", auth_cert=der)


def _verify(mp, ctype, body, now, **kwargs):
    message = parse_soap_message(body, content_type=ctype)
    return verify_management_request(
        message, service_provider=PROVIDER, trust=mp.trust(**kwargs), now=now
    )


def test_auth_cert_reg_verifies(mp, owner, auth, now):
    ctype, body, soap = signed_message(_reg(auth), member=owner, auth=auth)
    assert ctype.startswith('multipart/related; type="application/octet-stream"')
    result = _verify(mp, ctype, body, now)
    assert result.request == _reg(auth)
    assert result.signer == OWNER
    assert result.auth_cert == auth.cert
    assert result.sign_ocsp.status is OcspCertStatus.GOOD
    assert result.auth_ocsp is not None
    assert result.message.soap == soap


def test_multipart_layout_follows_pr_mserv(owner, auth):
    ctype, body, soap = signed_message(_reg(auth), member=owner, auth=auth)
    parts = parse_multipart(body, parse_content_type(ctype).param("boundary"))
    assert [p.header("Content-Type") for p in parts] == [
        "text/xml; charset=UTF-8",
        *["application/octet-stream"] * 6,
    ]
    assert parts[0].body == soap
    assert parts[1].header(SIGNATURE_ALGORITHM_HEADER) == "SHA512withRSA"
    assert parts[2].header(SIGNATURE_ALGORITHM_HEADER) == "SHA512withRSA"
    assert parts[3].body == auth.cert.public_bytes(Encoding.DER)
    assert parts[4].body == owner.cert.public_bytes(Encoding.DER)
    assert parts[5].body == owner.ocsp_der
    assert parts[6].body == auth.ocsp_der


@pytest.mark.parametrize("index", [1, 2])
def test_signatures_verify_with_openssl(tmp_path, owner, auth, index):
    openssl = require_tool("openssl")
    ctype, body, soap = signed_message(_reg(auth), member=owner, auth=auth)
    parts = parse_multipart(body, parse_content_type(ctype).param("boundary"))
    cert = (auth if index == 1 else owner).cert
    (tmp_path / "pub.pem").write_bytes(
        cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "sig").write_bytes(parts[index].body)
    (tmp_path / "soap").write_bytes(soap)
    out = subprocess.run(
        [openssl, "dgst", "-sha512", "-verify", "pub.pem", "-signature", "sig", "soap"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Verified OK" in out.stdout


@pytest.mark.parametrize("algorithm", list(ManagementSignatureAlgorithm))
def test_every_algorithm_verifies(mp, owner, now, algorithm):
    member = dataclasses.replace(owner, algorithm=algorithm)
    request = ManagementRequest(T.CLIENT_REG, SERVER, client=SUB, subsystem_name="S")
    ctype, body, _ = signed_message(request, member=member)
    assert _verify(mp, ctype, body, now).signer == OWNER


def test_client_reg_of_another_members_subsystem_is_signed_by_that_member(mp, now):
    foreign = OTHER.subsystem("x")
    signer = mp.member(OTHER, "Other Co")
    request = ManagementRequest(T.CLIENT_REG, SERVER, client=foreign)
    ctype, body, _ = signed_message(request, member=signer)
    assert _verify(mp, ctype, body, now).signer == OTHER


def test_unsigned_deletion_is_text_xml(mp, auth, now):
    der = auth.cert.public_bytes(Encoding.DER)
    request = ManagementRequest(T.AUTH_CERT_DELETION, SERVER, auth_cert=der)
    ctype, body, soap = signed_message(request)
    assert (ctype, body) == ("text/xml; charset=UTF-8", soap)
    result = _verify(mp, ctype, body, now)
    assert result.signer is None and result.request == request


def _swap(body: bytes, ctype: str, index: int, data: bytes) -> bytes:
    boundary = parse_content_type(ctype).param("boundary")
    parts = list(parse_multipart(body, boundary))
    parts[index] = MimePart(parts[index].headers, data, parts[index].raw_headers)
    return build_multipart(parts, boundary)


def test_wrong_auth_signature_is_refused(mp, owner, auth, now):
    impostor = mp.auth(SERVER)  # another key, same server
    forged = dataclasses.replace(impostor, cert=auth.cert, ocsp_der=auth.ocsp_der)
    ctype, body, _ = signed_message(_reg(auth), member=owner, auth=forged)
    with pytest.raises(InvalidSignature, match="authentication key"):
        _verify(mp, ctype, body, now)


def test_wrong_owner_signature_is_refused(mp, owner, auth, now):
    other_key = mp.member(OWNER).key
    forged = dataclasses.replace(owner, key=other_key)
    ctype, body, _ = signed_message(_reg(auth), member=forged, auth=auth)
    with pytest.raises(InvalidSignature, match="member signature"):
        _verify(mp, ctype, body, now)


def test_owner_cert_of_another_member_is_refused(mp, auth, now):
    other = mp.member(OTHER, "Other Co")
    ctype, body, _ = signed_message(_reg(auth), member=other, auth=auth)
    with pytest.raises(CertificateValidationError) as info:
        _verify(mp, ctype, body, now)
    assert info.value.code == "IncorrectCertificate"


def test_tampered_soap_is_refused(mp, owner, auth, now):
    ctype, body, soap = signed_message(_reg(auth), member=owner, auth=auth)
    tampered = _swap(body, ctype, 0, soap.replace(b"ss1.jp", b"ss9.jp"))
    with pytest.raises(InvalidSignature):
        _verify(mp, ctype, tampered, now)


def test_auth_cert_part_must_be_the_body_cert(mp, owner, auth, now):
    other = mp.auth(SERVER)
    ctype, body, _ = signed_message(_reg(auth), member=owner, auth=auth)
    swapped = _swap(body, ctype, 3, other.cert.public_bytes(Encoding.DER))
    with pytest.raises(CertificateValidationError, match="do not match"):
        _verify(mp, ctype, swapped, now)


def test_auth_cert_of_another_server_is_refused(mp, owner, now):
    other_server = dataclasses.replace(SERVER, server_code="ss2")
    auth = mp.auth(other_server)
    ctype, body, _ = signed_message(_reg(auth), member=owner, auth=auth)
    with pytest.raises(CertificateValidationError) as info:
        _verify(mp, ctype, body, now)
    assert info.value.code == "IncorrectCertificate"


@pytest.mark.parametrize(
    ("answer", "age", "error"),
    [
        (REVOKED, dt.timedelta(minutes=1), RevokedCertificate),
        (UNKNOWN, dt.timedelta(minutes=1), OcspUnknownStatus),
        (None, dt.timedelta(hours=2), OcspStale),
    ],
)
@pytest.mark.parametrize("whose", ["owner", "auth"])
def test_bad_ocsp_is_refused(mp, owner, auth, now, answer, age, error, whose):
    target = owner if whose == "owner" else auth
    ocsp = mp.ocsp(target.cert, answer or GOOD, at=now - age)
    bad = dataclasses.replace(target, ocsp_der=ocsp)
    signers = (
        {"member": bad, "auth": auth}
        if whose == "owner"
        else {
            "member": owner,
            "auth": bad,
        }
    )
    ctype, body, _ = signed_message(_reg(auth), **signers)
    with pytest.raises(error):
        _verify(mp, ctype, body, now)


def test_untrusted_ca_is_refused(owner, auth, now):
    stranger = build_mgmt_pki(now)
    ctype, body, _ = signed_message(_reg(auth), member=owner, auth=auth)
    with pytest.raises(CertificateValidationError):
        _verify(stranger, ctype, body, now)


def test_auth_cert_without_ocsp_is_refused_unless_allowed(mp, owner, auth, now):
    bare = dataclasses.replace(auth, ocsp_der=None)
    ctype, body, _ = signed_message(_reg(auth), member=owner, auth=bare)
    with pytest.raises(CertificateValidationError):
        _verify(mp, ctype, body, now)
    result = _verify(mp, ctype, body, now, require_auth_cert_ocsp=False)
    assert result.auth_ocsp is None and result.auth_cert == auth.cert


def test_wrong_service_provider_is_refused(mp, owner, auth, now):
    ctype, body, _ = signed_message(
        _reg(auth), member=owner, auth=auth, provider=OTHER.subsystem("MGMT")
    )
    with pytest.raises(InvalidRequest, match="management service"):
        _verify(mp, ctype, body, now)


def test_sender_must_be_the_server_owner(mp, owner, auth, now):
    ctype, body, _ = signed_message(_reg(auth), member=owner, auth=auth, client=OTHER)
    with pytest.raises(InvalidRequest, match="server owner"):
        _verify(mp, ctype, body, now)


def test_missing_proof_parts_are_refused(mp, owner, auth, now):
    ctype, body, soap = signed_message(_reg(auth), member=owner, auth=auth)
    boundary = parse_content_type(ctype).param("boundary")
    parts = parse_multipart(body, boundary)[:3]
    with pytest.raises(MalformedMessage) as info:
        _verify(mp, ctype, build_multipart(parts, boundary), now)
    assert info.value.code == "MissingSignature"
    with pytest.raises(MalformedMessage):
        _verify(mp, "text/xml", soap, now)


def test_unknown_signature_algorithm_is_refused(mp, owner, now):
    request = ManagementRequest(T.ADDRESS_CHANGE, SERVER, address="ss1.jp")
    ctype, body, _ = signed_message(request, member=owner)
    weak = body.replace(b"SHA512withRSA", b"SHA1withRSA\x20\x20")
    with pytest.raises(MalformedMessage):
        _verify(mp, ctype, weak, now)


def test_builder_refuses_misuse(owner, auth):
    soap = b"<x/>"
    with pytest.raises(ValueError):
        build_management_message(soap, T.CLIENT_DELETION, member=owner)
    with pytest.raises(ValueError):
        build_management_message(soap, T.CLIENT_REG, member=owner, auth=auth)
    with pytest.raises(ValueError):
        build_management_message(soap, T.AUTH_CERT_REG, member=owner)


# --- X-Road's PR-MSERV layout: no OCSP part for the auth certificate ---------


def _xroad_layout(owner, auth):
    return signed_message(_reg(auth), member=owner, auth=auth, extra_auth_ocsp=False)


def test_builder_sends_the_pr_mserv_layout_by_default(owner, auth):
    soap = b"<soap/>"
    ctype, body = build_management_message(
        soap, T.AUTH_CERT_REG, member=owner, auth=auth
    )
    parts = parse_multipart(body, parse_content_type(ctype).param("boundary"))
    # PR-MSERV §2.3: SOAP, auth signature, owner signature, auth cert, owner
    # cert, owner OCSP: six parts in all, none for the auth cert's status.
    assert len(parts) == 6
    assert [p.body for p in parts[3:]] == [
        auth.cert.public_bytes(Encoding.DER),
        owner.cert.public_bytes(Encoding.DER),
        owner.ocsp_der,
    ]
    with pytest.raises(ValueError):
        build_management_message(
            soap,
            T.AUTH_CERT_REG,
            member=owner,
            auth=dataclasses.replace(auth, ocsp_der=None),
            extra_auth_ocsp=True,
        )


def test_status_query_names_the_auth_cert_and_its_issuer(mp, owner, auth, now):
    ctype, body, _ = _xroad_layout(owner, auth)
    message = parse_soap_message(body, content_type=ctype)
    query = auth_cert_status_query(
        message, service_provider=PROVIDER, trust=mp.trust(), now=now
    )
    assert query is not None
    assert query.cert == auth.cert and query.issuer == mp.pki.issuing.cert
    # With the extra part, or for other operations, nothing is to be fetched.
    ctype, body, _ = signed_message(_reg(auth), member=owner, auth=auth)
    extra = parse_soap_message(body, content_type=ctype)
    assert (
        auth_cert_status_query(
            extra, service_provider=PROVIDER, trust=mp.trust(), now=now
        )
        is None
    )
    request = ManagementRequest(T.ADDRESS_CHANGE, SERVER, address="ss1.jp")
    ctype, body, _ = signed_message(request, member=owner)
    other = parse_soap_message(body, content_type=ctype)
    assert (
        auth_cert_status_query(
            other, service_provider=PROVIDER, trust=mp.trust(), now=now
        )
        is None
    )


def test_status_query_refuses_forgeries_before_any_lookup(mp, owner, auth, now):
    forged = dataclasses.replace(auth, key=mp.auth(SERVER).key)
    ctype, body, _ = _xroad_layout(owner, forged)
    message = parse_soap_message(body, content_type=ctype)
    with pytest.raises(InvalidSignature):
        auth_cert_status_query(
            message, service_provider=PROVIDER, trust=mp.trust(), now=now
        )
    stranger = build_mgmt_pki(now)
    ctype, body, _ = _xroad_layout(owner, auth)
    message = parse_soap_message(body, content_type=ctype)
    with pytest.raises(CertificateValidationError):
        auth_cert_status_query(
            message, service_provider=PROVIDER, trust=stranger.trust(), now=now
        )


def test_xroad_layout_verifies_with_a_fetched_status(mp, owner, auth, now):
    ctype, body, _ = _xroad_layout(owner, auth)
    message = parse_soap_message(body, content_type=ctype)
    with pytest.raises(CertificateValidationError, match="No OCSP response"):
        verify_management_request(
            message, service_provider=PROVIDER, trust=mp.trust(), now=now
        )
    fetched = mp.ocsp(auth.cert)
    result = verify_management_request(
        message,
        service_provider=PROVIDER,
        trust=mp.trust(),
        now=now,
        auth_cert_ocsp=fetched,
    )
    assert result.auth_ocsp is not None and result.auth_ocsp.der == fetched
    assert result.auth_ocsp.serial_number == auth.cert.serial_number


@pytest.mark.parametrize(
    ("answer", "at", "error"),
    [
        (REVOKED, None, RevokedCertificate),
        (UNKNOWN, None, OcspUnknownStatus),
        (GOOD, dt.timedelta(hours=2), OcspStale),
    ],
)
def test_xroad_layout_refuses_a_bad_fetched_status(
    mp, owner, auth, now, answer, at, error
):
    ctype, body, _ = _xroad_layout(owner, auth)
    message = parse_soap_message(body, content_type=ctype)
    when = now - at if at else None
    with pytest.raises(error):
        verify_management_request(
            message,
            service_provider=PROVIDER,
            trust=mp.trust(),
            now=now,
            auth_cert_ocsp=mp.ocsp(auth.cert, answer, at=when),
        )


def test_fetched_status_of_another_cert_is_refused(mp, owner, auth, now):
    ctype, body, _ = _xroad_layout(owner, auth)
    message = parse_soap_message(body, content_type=ctype)
    with pytest.raises(OcspError):
        verify_management_request(
            message,
            service_provider=PROVIDER,
            trust=mp.trust(),
            now=now,
            auth_cert_ocsp=owner.ocsp_der,
        )


def test_fetched_status_is_misuse_when_the_request_carries_one(mp, owner, auth, now):
    ctype, body, _ = signed_message(_reg(auth), member=owner, auth=auth)
    message = parse_soap_message(body, content_type=ctype)
    with pytest.raises(ValueError):
        verify_management_request(
            message,
            service_provider=PROVIDER,
            trust=mp.trust(),
            now=now,
            auth_cert_ocsp=auth.ocsp_der,
        )
