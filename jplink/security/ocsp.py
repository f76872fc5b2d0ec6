"""OCSP client side (RFC 6960): build requests, parse and verify responses.

Sans-IO: the caller sends the request bytes and passes the response bytes
back, with ``now``. :func:`verify_ocsp_response` is the one trust decision: it
returns a frozen :class:`OcspVerified` for a fresh, correctly signed ``good``
status and raises otherwise (revoked, unknown, stale, badly signed, foreign).
:func:`parse_ocsp_response` only decodes, for caches and for serving stored
responses to peers.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import (
    CertificateValidationError,
    InvalidSignature,
    OcspError,
    OcspStale,
    OcspUnknownStatus,
    RevokedCertificate,
)

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "OcspCertStatus",
    "OcspResponseStatus",
    "OcspSingleResponse",
    "OcspVerified",
    "ParsedOcspResponse",
    "build_ocsp_request",
    "parse_ocsp_response",
    "verify_ocsp_response",
]

#: Tolerated difference between our clock and the responder's.
DEFAULT_CLOCK_SKEW = dt.timedelta(minutes=5)


class OcspResponseStatus(enum.IntEnum):
    """``OCSPResponseStatus`` (RFC 6960 §4.2.1); the value is the wire value."""

    SUCCESSFUL = 0
    MALFORMED_REQUEST = 1
    INTERNAL_ERROR = 2
    TRY_LATER = 3
    SIG_REQUIRED = 5
    UNAUTHORIZED = 6


class OcspCertStatus(enum.IntEnum):
    """``CertStatus`` (RFC 6960 §4.2.1); the value is the CHOICE tag number."""

    GOOD = 0
    REVOKED = 1
    UNKNOWN = 2


_FROM_CRYPTO_STATUS = {
    ocsp.OCSPCertStatus.GOOD: OcspCertStatus.GOOD,
    ocsp.OCSPCertStatus.REVOKED: OcspCertStatus.REVOKED,
    ocsp.OCSPCertStatus.UNKNOWN: OcspCertStatus.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class OcspSingleResponse:
    """One ``SingleResponse``, as received (not yet trusted)."""

    hash_algorithm: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int
    status: OcspCertStatus
    this_update: dt.datetime
    next_update: dt.datetime | None
    revoked_at: dt.datetime | None
    reason: x509.ReasonFlags | None


@dataclass(frozen=True, slots=True)
class ParsedOcspResponse:
    """A decoded OCSP response; nothing in it is verified yet."""

    response_status: OcspResponseStatus
    der: bytes
    produced_at: dt.datetime | None = None
    responder_name: x509.Name | None = None
    responder_key_hash: bytes | None = None
    certificates: tuple[x509.Certificate, ...] = ()
    responses: tuple[OcspSingleResponse, ...] = ()
    nonce: bytes | None = None
    _decoded: ocsp.OCSPResponse | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class OcspVerified:
    """A verified, fresh ``good`` status of one certificate.

    ``status`` is always :attr:`OcspCertStatus.GOOD`: revoked and unknown
    statuses are raised, never returned. ``der`` is the response exactly as
    received, for embedding in signatures and serving to peers.
    """

    status: OcspCertStatus
    serial_number: int
    this_update: dt.datetime
    next_update: dt.datetime | None
    produced_at: dt.datetime
    revoked_at: dt.datetime | None
    reason: x509.ReasonFlags | None
    responder: x509.Certificate
    der: bytes
    nonce: bytes | None = None


def build_ocsp_request(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    hash_algorithm: hashes.HashAlgorithm | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """The DER ``OCSPRequest`` for one certificate.

    Args:
        cert: the certificate whose status is asked.
        issuer: its issuing CA certificate.
        hash_algorithm: the CertID hash; SHA-256 by default. X-Road's own
            signer uses SHA-1 CertIDs, so interop callers pass ``hashes.SHA1()``.
        nonce: optional nonce value (RFC 9654: 1 to 128 octets).

    Returns:
        The DER request, ready for ``Content-Type: application/ocsp-request``.

    Raises:
        ValueError: an empty or over-long nonce, or an unsupported hash.
    """
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        cert, issuer, hash_algorithm or hashes.SHA256()
    )
    if nonce is not None:
        if not 1 <= len(nonce) <= 128:
            raise ValueError("an OCSP nonce has 1 to 128 octets (RFC 9654)")
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def parse_ocsp_response(der: bytes) -> ParsedOcspResponse:
    """Decode an ``OCSPResponse`` without trusting anything in it.

    Args:
        der: the bytes received from a responder or a peer.

    Returns:
        The decoded response; for an unsuccessful status only
        ``response_status`` and ``der`` are set.

    Raises:
        OcspError: the bytes are not a DER OCSP response of the basic type.
    """
    try:
        decoded = ocsp.load_der_ocsp_response(der)
        status = OcspResponseStatus(decoded.response_status.value)
        if status is not OcspResponseStatus.SUCCESSFUL:
            return ParsedOcspResponse(response_status=status, der=bytes(der))
        responses = tuple(_single(single) for single in decoded.responses)
        nonce = _nonce(decoded.extensions)
        return ParsedOcspResponse(
            response_status=status,
            der=bytes(der),
            produced_at=decoded.produced_at_utc,
            responder_name=decoded.responder_name,
            responder_key_hash=decoded.responder_key_hash,
            certificates=tuple(decoded.certificates),
            responses=responses,
            nonce=nonce,
            _decoded=decoded,
        )
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise OcspError(f"Malformed OCSP response: {exc}") from exc


def _single(single: ocsp.OCSPSingleResponse) -> OcspSingleResponse:
    status = _FROM_CRYPTO_STATUS[single.certificate_status]
    revoked = status is OcspCertStatus.REVOKED
    return OcspSingleResponse(
        hash_algorithm=single.hash_algorithm.name,
        issuer_name_hash=single.issuer_name_hash,
        issuer_key_hash=single.issuer_key_hash,
        serial_number=single.serial_number,
        status=status,
        this_update=single.this_update_utc,
        next_update=single.next_update_utc,
        revoked_at=single.revocation_time_utc if revoked else None,
        reason=single.revocation_reason if revoked else None,
    )


def _nonce(extensions: x509.Extensions) -> bytes | None:
    try:
        return extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def verify_ocsp_response(
    der: bytes,
    *,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: dt.datetime,
    max_age: dt.timedelta | None,
    nonce: bytes | None = None,
    trusted_responders: Sequence[x509.Certificate] = (),
    clock_skew: dt.timedelta = DEFAULT_CLOCK_SKEW,
) -> OcspVerified:
    """Verify that ``der`` proves ``cert`` is not revoked at ``now``.

    Args:
        der: the OCSP response bytes.
        cert: the certificate in question.
        issuer: the CA that issued ``cert`` (already trusted by the caller).
        now: the validation time (aware).
        max_age: the largest accepted ``now - thisUpdate`` (X-Road's
            ``ocspFreshnessSeconds``), or None to rely on nextUpdate only.
        nonce: the nonce sent in the request; the response must echo it.
        trusted_responders: locally configured responder certificates (the
            global configuration's ``ocsp/cert``), trusted as they are.
        clock_skew: tolerated clock difference for thisUpdate/nextUpdate.

    Returns:
        The verified ``good`` status.

    Raises:
        OcspError: unsuccessful or malformed response, unauthorised or
            expired responder, no status for ``cert``, nonce mismatch, times
            in the future.
        InvalidSignature: the response signature does not verify.
        CertificateValidationError: ``cert`` is not issued by ``issuer``.
        RevokedCertificate: the certificate is revoked.
        OcspUnknownStatus: the responder does not know the certificate.
        OcspStale: nextUpdate has passed or thisUpdate is older than max_age.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    parsed = parse_ocsp_response(der)
    if parsed.response_status is not OcspResponseStatus.SUCCESSFUL:
        raise OcspError(
            f"OCSP responder answered {parsed.response_status.name}",
            detail={"response_status": parsed.response_status.name},
        )
    decoded = parsed._decoded
    assert decoded is not None  # set for every successful response
    _check_issued_by(cert, issuer)
    responder = _authorized_responder(parsed, issuer, trusted_responders, now)
    _check_signature(decoded, responder)
    single = _matching_single(parsed, cert, issuer)
    if nonce is not None and parsed.nonce != nonce:
        raise OcspError("OCSP response nonce does not match the request")
    if single.status is OcspCertStatus.REVOKED:
        raise RevokedCertificate(
            f"Certificate {cert.serial_number:x} is revoked",
            revoked_at=single.revoked_at,
            reason=single.reason.name if single.reason else None,
        )
    produced_at = parsed.produced_at or single.this_update
    if single.this_update > now + clock_skew or produced_at > now + clock_skew:
        raise OcspError("OCSP response is dated in the future")
    if single.next_update is not None and single.next_update + clock_skew < now:
        raise OcspStale(
            "OCSP response has passed its nextUpdate",
            produced_at=produced_at,
            max_age=max_age,
        )
    if max_age is not None and now - single.this_update > max_age:
        raise OcspStale(
            "OCSP response is too old", produced_at=produced_at, max_age=max_age
        )
    if single.status is OcspCertStatus.UNKNOWN:
        raise OcspUnknownStatus(
            f"OCSP responder does not know certificate {cert.serial_number:x}"
        )
    return OcspVerified(
        status=single.status,
        serial_number=single.serial_number,
        this_update=single.this_update,
        next_update=single.next_update,
        produced_at=produced_at,
        revoked_at=None,
        reason=None,
        responder=responder,
        der=parsed.der,
        nonce=parsed.nonce,
    )


def _check_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    # The CertID and the responder's authority both hang on ``issuer``; a
    # wrong issuer would let its delegated responder vouch for ``cert``.
    try:
        cert.verify_directly_issued_by(issuer)
    except (
        ValueError,
        TypeError,
        _CryptoInvalidSignature,
        UnsupportedAlgorithm,
    ) as exc:
        raise CertificateValidationError(
            "Certificate is not issued by the given issuer"
        ) from exc


def _key_hash(certificate: x509.Certificate) -> bytes:
    # RFC 6960 §4.2.1: KeyHash is "SHA-1 hash of responder's public key
    # (excluding the tag and length fields)", the same as RFC 5280's key id.
    return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def _names_responder(parsed: ParsedOcspResponse, candidate: x509.Certificate) -> bool:
    if parsed.responder_name is not None:
        return candidate.subject == parsed.responder_name
    return _key_hash(candidate) == parsed.responder_key_hash


def _authorized_responder(
    parsed: ParsedOcspResponse,
    issuer: x509.Certificate,
    trusted: Sequence[x509.Certificate],
    now: dt.datetime,
) -> x509.Certificate:
    # RFC 6960 §4.2.2.2: "Clients MUST reject the response if the certificate
    # required to validate the signature on the response does not meet at
    # least one of the following criteria: 1. Matches a local configuration
    # of OCSP signing authority for the certificate in question, or 2. Is the
    # certificate of the CA that issued the certificate in question, or
    # 3. Includes a value of id-kp-OCSPSigning in an extended key usage
    # extension and is issued by the CA that issued the certificate in
    # question as stated above."
    for candidate in (issuer, *trusted):
        if _names_responder(parsed, candidate):
            _check_validity(candidate, now)
            return candidate
    for candidate in parsed.certificates:
        if not _names_responder(parsed, candidate):
            continue
        if not _is_delegated_by(candidate, issuer):
            continue
        _check_validity(candidate, now)
        return candidate
    raise OcspError("OCSP response is not signed by an authorised responder")


def _is_delegated_by(candidate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except (x509.ExtensionNotFound, ValueError):
        return False
    if ExtendedKeyUsageOID.OCSP_SIGNING not in eku.value:
        return False
    try:
        candidate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, _CryptoInvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _check_validity(responder: x509.Certificate, now: dt.datetime) -> None:
    if not responder.not_valid_before_utc <= now <= responder.not_valid_after_utc:
        raise OcspError(
            "OCSP responder certificate is not valid at the validation time",
            detail={"responder": responder.subject.rfc4514_string()},
        )


def _check_signature(decoded: ocsp.OCSPResponse, responder: x509.Certificate) -> None:
    key = responder.public_key()
    data, signature = decoded.tbs_response_bytes, decoded.signature
    try:
        algorithm = decoded.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            raise OcspError("Unsupported OCSP responder key or signature algorithm")
    except UnsupportedAlgorithm as exc:
        raise OcspError(f"Unsupported OCSP signature algorithm: {exc}") from exc
    except _CryptoInvalidSignature as exc:
        raise InvalidSignature("OCSP response signature does not verify") from exc


_CERT_ID_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _cert_id(
    cert: x509.Certificate, issuer: x509.Certificate, algorithm: str
) -> tuple[bytes, bytes]:
    # cryptography computes issuerNameHash and issuerKeyHash exactly as
    # RFC 6960 §4.1.1 defines them ("Hash of issuer's DN", "Hash of issuer's
    # public key"), so let it build the CertID we expect.
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer, _CERT_ID_HASHES[algorithm]())
        .build()
    )
    return request.issuer_name_hash, request.issuer_key_hash


def _matching_single(
    parsed: ParsedOcspResponse, cert: x509.Certificate, issuer: x509.Certificate
) -> OcspSingleResponse:
    # RFC 6960 §3.2: "The client MUST confirm that ... The certificate
    # identified in a received response corresponds to the certificate that
    # was identified in the corresponding request".
    for single in parsed.responses:
        if single.serial_number != cert.serial_number:
            continue
        if single.hash_algorithm not in _CERT_ID_HASHES:
            continue
        if (single.issuer_name_hash, single.issuer_key_hash) == _cert_id(
            cert, issuer, single.hash_algorithm
        ):
            return single
    raise OcspError(
        "OCSP response has no status for this certificate and issuer",
        detail={"serial": f"{cert.serial_number:x}"},
    )
