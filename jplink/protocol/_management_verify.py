"""Management request proofs, receiving side: the central server's trust decision.

:func:`verify_management_request` checks a parsed request's header, body and
proof parts at ``now`` and returns a frozen :class:`VerifiedManagementRequest`
or raises; it never returns a flag. Re-exported by
:mod:`jplink.protocol.management`.

``authCertReg`` arrives in X-Road's layout (PR-MSERV §2.3: five proof parts,
no OCSP response for the authentication certificate) or with JP-LINK's
optional 6th proof part holding that response. For the X-Road layout the
caller asks :func:`auth_cert_status_query` what to look up, fetches the
status from the CA's OCSP responder itself (I/O is not done here) and passes
the response to :func:`verify_management_request` as ``auth_cert_ocsp``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from ..errors import (
    CertificateValidationError,
    InvalidRequest,
    InvalidSignature,
    MalformedMessage,
)
from ..identifiers import ClientId
from ..security.c14n import verify_octets
from ..security.certpath import build_certificate_path
from ..security.certs import CertProfile, member_subject_from_certificate
from ..security.ocsp import OcspVerified, verify_ocsp_response
from ._management_body import ManagementRequest, ManagementRequestType, SignerRole
from ._management_proof import (
    BINARY,
    SIGNATURE_ALGORITHM_HEADER,
    ManagementSignatureAlgorithm,
)
from ._management_soap import parse_management_request
from .mime import MimePart
from .soap import SoapMessage

__all__ = [
    "AuthCertStatusQuery",
    "ManagementTrust",
    "VerifiedManagementRequest",
    "auth_cert_status_query",
    "verify_management_request",
]


@dataclass(frozen=True, slots=True)
class ManagementTrust:
    """What the central server trusts when verifying proofs.

    Attributes:
        auth_anchors: top CAs that may issue authentication certificates.
        sign_anchors: top CAs that may issue signing certificates (approved
            CAs marked authentication-only are left out).
        intermediates: intermediate CA certificates, for path building.
        ocsp_responders: configured OCSP responder certificates.
        ocsp_freshness: the largest accepted OCSP age (``ocspFreshnessSeconds``).
        require_auth_cert_ocsp: refuse ``authCertReg`` unless a fresh GOOD
            OCSP status of the auth certificate verifies, taken from JP-LINK's
            extra part or, for X-Road's layout, from the response the caller
            fetched (``auth_cert_ocsp``). X-Road's own central server checks
            only the auth certificate's chain; JP-LINK fails closed.
    """

    auth_anchors: tuple[x509.Certificate, ...]
    sign_anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    ocsp_responders: tuple[x509.Certificate, ...] = ()
    ocsp_freshness: dt.timedelta = dt.timedelta(seconds=3600)
    require_auth_cert_ocsp: bool = True


@dataclass(frozen=True, slots=True)
class VerifiedManagementRequest:
    """A management request whose header, body and proofs all checked out.

    Attributes:
        request: the body.
        message: the SOAP message (its raw ``soap`` bytes are what was signed).
        signer: the member whose signing key signed (None for unsigned types).
        sign_cert: that member's signing certificate.
        sign_ocsp: its verified GOOD status.
        auth_cert: the verified auth certificate (``authCertReg``).
        auth_ocsp: its verified GOOD status (from the extra part or the
            caller's ``auth_cert_ocsp``); None only when the trust does not
            require it and none was given.
    """

    request: ManagementRequest
    message: SoapMessage
    signer: ClientId | None = None
    sign_cert: x509.Certificate | None = None
    sign_ocsp: OcspVerified | None = None
    auth_cert: x509.Certificate | None = None
    auth_ocsp: OcspVerified | None = None


@dataclass(frozen=True, slots=True)
class AuthCertStatusQuery:
    """An ``authCertReg`` in X-Road's layout: whose OCSP status to fetch.

    Only returned once every proof of the request verified, so the caller
    never queries a responder about a certificate nobody proved to hold.

    Attributes:
        cert: the authentication certificate (chains to an approved CA).
        issuer: the CA certificate that issued it (ask its OCSP responder).
    """

    cert: x509.Certificate
    issuer: x509.Certificate


@dataclass(frozen=True, slots=True)
class _Checked:
    request: ManagementRequest
    signer: ClientId | None = None
    sign_cert: x509.Certificate | None = None
    sign_ocsp: OcspVerified | None = None
    auth_cert: x509.Certificate | None = None
    auth_issuer: x509.Certificate | None = None
    auth_status_part: bytes | None = None


def _load_cert(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertificateValidationError(
            f"The {what} is not a DER certificate"
        ) from exc


def _key_usage(cert: x509.Certificate, bit: str, what: str) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        ok = bool(getattr(usage, bit))
    except x509.ExtensionNotFound:
        ok = False
    if not ok:
        raise CertificateValidationError(
            f"The {what} lacks keyUsage {bit}", code="IncorrectCertificate"
        )


def _status(
    cert: x509.Certificate,
    ocsp_der: bytes,
    anchors: Sequence[x509.Certificate],
    trust: ManagementTrust,
    now: dt.datetime,
) -> OcspVerified:
    path = build_certificate_path(
        cert, anchors=anchors, intermediates=trust.intermediates, at=now
    )
    return verify_ocsp_response(
        ocsp_der,
        cert=cert,
        issuer=path[1],
        now=now,
        max_age=trust.ocsp_freshness,
        trusted_responders=trust.ocsp_responders,
    )


def _check_sig(part: MimePart, cert: x509.Certificate, soap: bytes, what: str) -> None:
    if part.content_type.media_type != BINARY:
        raise MalformedMessage(
            f"The {what} part is not {BINARY}", code="InvalidMessage"
        )
    algorithm = ManagementSignatureAlgorithm.from_header(
        part.header(SIGNATURE_ALGORITHM_HEADER)
    )
    try:
        verify_octets(cert.public_key(), algorithm.method, part.body, soap)
    except InvalidSignature as exc:
        raise InvalidSignature(f"The {what} does not verify") from exc


def _proof_parts(
    message: SoapMessage, kind: ManagementRequestType
) -> tuple[bytes, ...]:
    parts = message.attachments
    wanted = {SignerRole.NONE: (0, 0), SignerRole.SERVER_OWNER: (3, 3)}
    low, high = wanted.get(kind.signer, (3, 3))
    if kind is ManagementRequestType.AUTH_CERT_REG:
        low, high = 5, 6
    if not low <= len(parts) <= high:
        raise MalformedMessage(
            f"{kind.value} needs {low} proof part(s) after the SOAP part, "
            f"not {len(parts)}",
            code="MissingSignature" if len(parts) < low else "InvalidMessage",
        )
    for part in parts:
        if part.content_type.media_type != BINARY:
            raise MalformedMessage("A proof part is not binary", code="InvalidMessage")
    return tuple(p.body for p in parts)


def _member_of(cert: x509.Certificate) -> ClientId:
    subject = member_subject_from_certificate(cert, CertProfile.SIGN)
    return ClientId(subject.instance, subject.member_class, subject.member_code)


def _check_service(
    message: SoapMessage, request: ManagementRequest, service_provider: ClientId
) -> None:
    service = message.service
    if (
        service.client != service_provider
        or service.service_code != request.type.value
        or service.service_version is not None
    ):
        raise InvalidRequest(
            "Invalid management service address. Contact the central server operator."
        )
    if message.client != request.server.owner:
        raise InvalidRequest("Sender does not match server owner.")


def _verify_auth_proofs(
    request: ManagementRequest,
    parts: tuple[bytes, ...],
    signature: MimePart,
    soap: bytes,
    trust: ManagementTrust,
    now: dt.datetime,
) -> tuple[x509.Certificate, x509.Certificate]:
    # PR-MSERV §2.3 part 4: "Authentication certificate that is being
    # registered (authCert field of the SOAP message)".
    if parts[2] != request.auth_cert:
        raise CertificateValidationError("Authentication certificates do not match.")
    auth_cert = _load_cert(parts[2], "authentication certificate")
    _key_usage(auth_cert, "digital_signature", "authentication certificate")
    named = member_subject_from_certificate(auth_cert, CertProfile.AUTH)
    if (
        named.instance,
        named.member_class,
        named.member_code,
        named.server_code,
    ) != (
        request.server.instance,
        request.server.member_class,
        request.server.member_code,
        request.server.server_code,
    ):
        raise CertificateValidationError(
            f"The authentication certificate is not for {request.server}",
            code="IncorrectCertificate",
        )
    path = build_certificate_path(
        auth_cert,
        anchors=trust.auth_anchors,
        intermediates=trust.intermediates,
        at=now,
    )
    # PR-MSERV §2.3 part 2: proof of possession of the authentication key.
    _check_sig(signature, auth_cert, soap, "authentication key signature")
    return auth_cert, path[1]


def _auth_status(
    checked: _Checked, der: bytes, trust: ManagementTrust, now: dt.datetime
) -> OcspVerified:
    assert checked.auth_cert is not None and checked.auth_issuer is not None
    return verify_ocsp_response(
        der,
        cert=checked.auth_cert,
        issuer=checked.auth_issuer,
        now=now,
        max_age=trust.ocsp_freshness,
        trusted_responders=trust.ocsp_responders,
    )


def _verify_member_proofs(
    request: ManagementRequest,
    signature: MimePart,
    cert_der: bytes,
    ocsp_der: bytes,
    soap: bytes,
    trust: ManagementTrust,
    now: dt.datetime,
) -> tuple[ClientId, x509.Certificate, OcspVerified]:
    sign_cert = _load_cert(cert_der, "signing certificate")
    _key_usage(sign_cert, "content_commitment", "signing certificate")
    sign_ocsp = _status(sign_cert, ocsp_der, trust.sign_anchors, trust, now)
    _check_sig(signature, sign_cert, soap, "member signature")
    signer = _member_of(sign_cert)
    if request.type.signer is SignerRole.SERVER_OWNER:
        expected = request.server.owner
    else:
        assert request.client is not None
        expected = request.client.member
    if signer != expected:
        raise CertificateValidationError(
            f"Subject identifier ({signer}) in certificate does not match "
            f"{expected} in request",
            code="IncorrectCertificate",
        )
    return signer, sign_cert, sign_ocsp


def _check_proofs(
    message: SoapMessage,
    service_provider: ClientId,
    trust: ManagementTrust,
    now: dt.datetime,
) -> _Checked:
    """Every check except the auth certificate's OCSP status."""
    request = parse_management_request(message)
    _check_service(message, request, service_provider)
    parts = _proof_parts(message, request.type)
    if request.type.signer is SignerRole.NONE:
        return _Checked(request)
    soap, attachments = message.soap, message.attachments
    auth_cert: x509.Certificate | None = None
    auth_issuer: x509.Certificate | None = None
    status_part: bytes | None = None
    if request.type is ManagementRequestType.AUTH_CERT_REG:
        auth_cert, auth_issuer = _verify_auth_proofs(
            request, parts, attachments[0], soap, trust, now
        )
        status_part = parts[5] if len(parts) == 6 else None
        sig_part, cert_der, ocsp_der = attachments[1], parts[3], parts[4]
    else:
        sig_part, cert_der, ocsp_der = attachments[0], parts[1], parts[2]
    signer, sign_cert, sign_ocsp = _verify_member_proofs(
        request, sig_part, cert_der, ocsp_der, soap, trust, now
    )
    return _Checked(
        request, signer, sign_cert, sign_ocsp, auth_cert, auth_issuer, status_part
    )


def auth_cert_status_query(
    message: SoapMessage,
    *,
    service_provider: ClientId,
    trust: ManagementTrust,
    now: dt.datetime,
) -> AuthCertStatusQuery | None:
    """What OCSP status the caller must fetch before verifying, if any.

    Runs every check of :func:`verify_management_request` except the auth
    certificate's status, so a forged or untrusted request is refused before
    any responder is asked.

    Args:
        message: the parsed SOAP message with its attachments.
        service_provider: ``managementRequestServiceProviderId``.
        trust: approved CAs, OCSP responders and freshness.
        now: the validation time (aware).

    Returns:
        For an ``authCertReg`` in X-Road's layout (no 6th proof part): the
        auth certificate and its issuer. None for other operations and for
        requests carrying the auth certificate's OCSP response themselves.

    Raises:
        The errors of :func:`verify_management_request`.
    """
    checked = _check_proofs(message, service_provider, trust, now)
    if checked.auth_cert is None or checked.auth_status_part is not None:
        return None
    assert checked.auth_issuer is not None
    return AuthCertStatusQuery(checked.auth_cert, checked.auth_issuer)


def verify_management_request(
    message: SoapMessage,
    *,
    service_provider: ClientId,
    trust: ManagementTrust,
    now: dt.datetime,
    auth_cert_ocsp: bytes | None = None,
) -> VerifiedManagementRequest:
    """Check a management request's header, body and proofs at ``now``.

    Checks, failing closed: the service is ``service_provider``'s operation
    and the header client is the server's owner (X-Road: "Sender does not
    match server owner"); every signature verifies over the raw SOAP bytes;
    the attached auth certificate is the one in the body, chains to an
    approved CA, has keyUsage digitalSignature, names the server (JP-LINK auth
    profile) and (unless the trust says otherwise) has a fresh GOOD OCSP
    status, read from JP-LINK's extra proof part or, in X-Road's layout, from
    ``auth_cert_ocsp``; the signing certificate chains to a signing-capable
    approved CA, has nonRepudiation, a fresh GOOD OCSP status and names the
    member who must sign (PR-MSERV: the server owner, or the client's owner
    member).

    Args:
        message: the parsed SOAP message with its attachments.
        service_provider: ``managementRequestServiceProviderId``.
        trust: approved CAs, OCSP responders and freshness.
        now: the validation time (aware).
        auth_cert_ocsp: for an ``authCertReg`` without the extra part, the
            auth certificate's OCSP response the caller fetched from the
            issuer's responder (see :func:`auth_cert_status_query`).

    Returns:
        The verified request.

    Raises:
        MalformedMessage: a malformed body or proof layout.
        InvalidRequest: wrong service, sender or address.
        InvalidSignature: a signature does not verify.
        CertificateValidationError: a certificate is untrusted, of the wrong
            usage or member, or not the one in the body (and its subclasses);
            no auth certificate status although the trust requires one.
        OcspError: a missing, bad, unknown or stale OCSP status (subclasses).
        ValueError: ``auth_cert_ocsp`` given for a request that carries the
            status itself, or for another operation.
    """
    checked = _check_proofs(message, service_provider, trust, now)
    auth_ocsp: OcspVerified | None = None
    if auth_cert_ocsp is not None and (
        checked.auth_cert is None or checked.auth_status_part is not None
    ):
        raise ValueError("auth_cert_ocsp is only for authCertReg in X-Road's layout")
    if checked.auth_cert is not None:
        status_der = checked.auth_status_part or auth_cert_ocsp
        if status_der is not None:
            auth_ocsp = _auth_status(checked, status_der, trust, now)
        elif trust.require_auth_cert_ocsp:
            raise CertificateValidationError(
                "No OCSP response for the authentication certificate",
                code="MissingSignature",
            )
    return VerifiedManagementRequest(
        checked.request,
        message,
        checked.signer,
        checked.sign_cert,
        checked.sign_ocsp,
        checked.auth_cert,
        auth_ocsp,
    )
