"""Certificate requests to the central server: send a CSR, fetch the certificate.

Steps 1 and 2 of onboarding (:mod:`security_server.registration`), through
the central server's public registration API, never its database:

1. :func:`submit_csr` sends a stored CSR (``POST
   /register/v1/certificate-requests``) and keeps the request id and the
   requester token (a secret: kept in the database only, never shown);
2. :func:`fetch_certificate` reads the request's state; once approved it
   imports the certificate with all of
   :func:`~security_server.certificates.import_certificate`'s checks.

Each state change and its audit row are written in one transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from jplink.errors import CertificateValidationError, Conflict, InvalidRequest, NotFound
from jplink.identifiers import parse_client_id
from jplink.security.certs import CertProfile
from jplink.storage import Database

from . import audit
from .central_client import CentralCertRequestStatus, CentralRegistrationClient
from .certificates import import_certificate, parse_certificate
from .identity import load_identity
from .management_client import latest_request, record_submission
from .models import CentralRequest, Csr
from .states import CentralRequestKind, CentralRequestStatus

__all__ = ["CsrFetchResult", "CsrSubmission", "fetch_certificate", "submit_csr"]

_K = CentralRequestKind
_S = CentralRequestStatus


@dataclass(frozen=True, slots=True)
class CsrSubmission:
    """A CSR sent to the central server (the token is not part of it)."""

    csr_id: int
    request_id: int
    status: str


@dataclass(frozen=True, slots=True)
class CsrFetchResult:
    """The central server's answer about a CSR request.

    Attributes:
        csr_id: the local CSR.
        request_id: the central request number.
        status: ``pending``, ``issuing``, ``approved`` or ``declined``.
        cert_sha256: hex SHA-256 of the imported certificate (approved).
        decline_reason: the operator's reason (declined).
    """

    csr_id: int
    request_id: int
    status: str
    cert_sha256: str | None = None
    decline_reason: str | None = None


async def submit_csr(
    db: Database,
    csr_id: int,
    *,
    central_url: str,
    session: aiohttp.ClientSession,
    actor: str,
    now: dt.datetime,
    timeout: float = 30.0,
) -> CsrSubmission:
    """Send a stored CSR to the central server's certificate-request endpoint.

    Args:
        db: the server's database.
        csr_id: the CSR (``jplink ss csr list``).
        central_url: the central server's registration URL (port 4001).
        session: an aiohttp session.
        actor: who (audit log).
        now: when.
        timeout: seconds allowed for the call.

    Returns:
        The central request id and its status (``submitted``).

    Raises:
        NotFound: code ``CsrNotFound``; ``ServerNotInitialized``.
        Conflict: the CSR was submitted before and is not declined.
        TransportError: the central server is unreachable or failed.
        InvalidRequest, NotFound, Conflict: the central server refused it.
        StorageError: the database failed.
    """
    async with db.transaction() as s:
        identity = await load_identity(s)
        row = await s.get(Csr, csr_id)
        if row is None:
            raise NotFound(f"No CSR {csr_id}", code="CsrNotFound")
        earlier = await latest_request(s, _K.CSR, str(csr_id))
        if earlier is not None and earlier.status != _S.DECLINED.value:
            raise Conflict(
                f"CSR {csr_id} was already sent (central request "
                f"{earlier.central_id}, {earlier.status}); use `csr fetch`"
            )
        usage, member, der = CertProfile(row.usage), row.member, row.csr_der
    pem = x509.load_der_x509_csr(der).public_bytes(Encoding.PEM).decode("ascii")
    client = CentralRegistrationClient(session, central_url, timeout=timeout)
    receipt = await client.submit_certificate_request(
        usage=usage,
        member=parse_client_id(member),
        csr_pem=pem,
        server_code=identity.server_id.server_code
        if usage is CertProfile.AUTH
        else None,
    )
    async with db.transaction() as s:
        record_submission(
            s,
            actor,
            _K.CSR,
            str(csr_id),
            receipt.request_id,
            now=now,
            token=receipt.token,
            central_url=central_url,
        )
    return CsrSubmission(csr_id, receipt.request_id, _S.SUBMITTED.value)


async def fetch_certificate(
    db: Database,
    csr_id: int,
    *,
    session: aiohttp.ClientSession,
    actor: str,
    now: dt.datetime,
    central_url: str | None = None,
    timeout: float = 30.0,
) -> CsrFetchResult:
    """Ask for a submitted CSR's state; import the certificate once issued.

    Args:
        db: the server's database.
        csr_id: the CSR sent with :func:`submit_csr`.
        session: an aiohttp session.
        actor: who (audit log).
        now: when (the certificate's validity is checked at this time).
        central_url: the registration URL; default: where it was sent.
        timeout: seconds allowed for the call.

    Returns:
        The status; with the imported certificate's hash when approved, the
        operator's reason when declined.

    Raises:
        NotFound: code ``CsrNotSubmitted``; the central server no longer
            knows the request (or the stored token is wrong).
        TransportError: the central server is unreachable or failed.
        CertificateValidationError: code ``IncorrectCertificate`` when the
            issued certificate is not for the CSR's key.
        InvalidRequest, CertificateValidationError, CertificateExpired,
        NotFound, Conflict: the issued certificate failed an import check
            (see :func:`~security_server.certificates.import_certificate`);
            nothing is imported then.
        StorageError: the database failed.
    """
    async with db.transaction() as s:
        row = await latest_request(s, _K.CSR, str(csr_id))
        if row is None or row.central_id is None or row.requester_token is None:
            raise NotFound(
                f"CSR {csr_id} has not been sent to the central server",
                code="CsrNotSubmitted",
            )
        row_id, request_id = row.id, int(row.central_id)
        token, local = row.requester_token, row.status
        central_url = central_url or row.central_url
        csr = await s.get(Csr, csr_id)
        csr_der = csr.csr_der if csr is not None else None
    if not central_url:
        raise InvalidRequest("Give the central server's registration URL")
    client = CentralRegistrationClient(session, central_url, timeout=timeout)
    state = await client.certificate_request_state(request_id, token)
    status = state.status.value
    if state.status is CentralCertRequestStatus.DECLINED:
        async with db.transaction() as s:
            row = await s.get(CentralRequest, row_id)
            assert row is not None
            if row.status != _S.DECLINED.value:
                row.status, row.reason = _S.DECLINED.value, state.decline_reason or ""
                row.updated_at = now
                audit.record(
                    s,
                    actor=actor,
                    action="central.csr.declined",
                    target=str(csr_id),
                    now=now,
                    detail={"requestId": request_id, "reason": row.reason},
                )
        return CsrFetchResult(
            csr_id, request_id, status, decline_reason=state.decline_reason
        )
    if state.status is not CentralCertRequestStatus.APPROVED:
        return CsrFetchResult(csr_id, request_id, status)
    assert state.certificate_pem is not None  # parse_cert_request_state checked
    pem = state.certificate_pem.encode("ascii", "replace")
    cert = parse_certificate(pem)
    _check_issued_for(cert, csr_der, request_id)
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER))
    if local == _S.APPROVED.value:  # imported by an earlier fetch
        return CsrFetchResult(
            csr_id, request_id, status, cert_sha256=digest.hexdigest()
        )
    try:
        await import_certificate(db, actor, pem, now=now)
    except Conflict as exc:
        # Imported by hand (``certs import``) in the meantime: same outcome.
        if exc.code != "CertificateExists":
            raise
    async with db.transaction() as s:
        row = await s.get(CentralRequest, row_id)
        assert row is not None
        row.status, row.updated_at = _S.APPROVED.value, now
        audit.record(
            s,
            actor=actor,
            action="central.csr.approved",
            target=str(csr_id),
            now=now,
            detail={"requestId": request_id, "cert": digest.hexdigest()},
        )
    return CsrFetchResult(csr_id, request_id, status, cert_sha256=digest.hexdigest())


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _check_issued_for(
    cert: x509.Certificate, csr_der: bytes | None, request_id: int
) -> None:
    """Refuse a certificate that is not for the key of the CSR that was sent."""
    if csr_der is None:
        raise NotFound(
            "The CSR was deleted (with its key) since it was sent",
            code="CsrNotFound",
        )
    csr_key = x509.load_der_x509_csr(csr_der).public_key()
    if _spki(cert.public_key()) != _spki(csr_key):
        raise CertificateValidationError(
            f"The certificate of central request {request_id} is not for the "
            "key of the CSR that was sent",
            code="IncorrectCertificate",
        )
