"""Certificate (CSR) requests for ``auth`` and ``sign`` certificates.

A security-server administrator submits a CSR for a registered member; the
CSR is checked on arrival (PKCS#10 self-signature = proof of key possession,
key strength, subject fitting the JP-LINK profile), so the operator only ever
sees requests the CA would accept. The same CSR submitted twice is a replay and
refused with Conflict. On approval the CA's enrolment API issues the
certificate (through a :class:`~jplink.clients.ca.CaEnrolmentClient`) and the
requester downloads it with its request id and token.

Approval calls the CA *between* two transactions, never inside one, and only
after **claiming** the request: a conditional update moves it from
``pending`` to ``issuing`` with a random claim token, so of two concurrent
approvals exactly one calls the CA and the other gets a Conflict. If the CA
fails, the claim is released (the request is pending again, nothing else
written); the final update to ``approved`` is conditional on still holding the
claim. A claim older than :data:`CLAIM_TIMEOUT` is taken to be abandoned (the
approving process died while waiting for the CA) and may be taken over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.clients.ca import CaEnrolmentClient, EnrolmentRequest
from jplink.errors import Conflict, InvalidRequest, JPLinkError, NotFound
from jplink.identifiers import ClientId, validate_part
from jplink.security.certs import (
    CertProfile,
    MemberSubject,
    verify_csr,
    verify_csr_subject,
)
from jplink.storage import Database

from . import audit
from ._lookup import instance_identifier, member_row
from .member_requests import (
    MAX_TEXT,
    RequestStatus,
    SubmittedRequest,
    check_text,
    mark_declined,
    pending_request,
)
from .models import CertificateRequest, Member
from .tokens import hash_secret, new_secret, secret_matches

__all__ = [
    "CLAIM_TIMEOUT",
    "CertificateRequestView",
    "approve_certificate_request",
    "certificate_request_status",
    "decline_certificate_request",
    "list_certificate_requests",
    "parse_usage",
    "submit_certificate_request",
]

log = logging.getLogger(__name__)

MAX_CSR_BYTES = 16384
#: An ``issuing`` claim older than this may be taken over by another approval.
#: Far longer than any CA call (``[ca] timeout_seconds``, 30 s by default).
CLAIM_TIMEOUT = dt.timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class CertificateRequestView:
    """A certificate request; ``certificate_pem`` is set once approved."""

    id: int
    status: RequestStatus
    usage: CertProfile
    member: ClientId
    server_code: str | None
    csr_sha256: str
    created_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None
    decline_reason: str | None
    certificate_pem: str | None
    serial: str | None


def parse_usage(text: str) -> CertProfile:
    """``auth``/``sign`` -> CertProfile.

    Raises:
        InvalidRequest: any other word.
    """
    try:
        return CertProfile(text)
    except ValueError:
        raise InvalidRequest(
            f"Unknown certificate usage {text!r}; use auth or sign"
        ) from None


def _view(r: CertificateRequest, instance: str) -> CertificateRequestView:
    return CertificateRequestView(
        id=r.id,
        status=RequestStatus(r.status),
        usage=CertProfile(r.usage),
        member=ClientId(instance, r.member_class, r.member_code),
        server_code=r.server_code,
        csr_sha256=r.csr_sha256,
        created_at=audit.aware(r.created_at),
        decided_at=audit.aware(r.decided_at) if r.decided_at else None,
        decided_by=r.decided_by,
        decline_reason=r.decline_reason,
        certificate_pem=r.certificate_pem,
        serial=r.serial,
    )


def _subject(member: ClientId, row: Member, server_code: str | None) -> MemberSubject:
    return MemberSubject(
        instance=member.instance,
        member_class=member.member_class,
        member_code=member.member_code,
        member_name=row.name,
        server_code=server_code,
    )


async def submit_certificate_request(
    db: Database,
    *,
    usage: CertProfile,
    member: ClientId,
    csr_pem: str,
    server_code: str | None = None,
    now: dt.datetime,
) -> SubmittedRequest:
    """Store a CSR request from the public registration endpoint.

    Raises:
        InvalidRequest: a bad CSR (unparsable, bad self-signature, weak key,
            subject not fitting the profile), a subsystem id, an auth request
            without server code (or a sign request with one).
        NotFound: the member is not registered.
        Conflict: this CSR was submitted before (replay).
    """
    if member.subsystem_code is not None:
        raise InvalidRequest("Certificates are issued to members, not subsystems")
    if (usage is CertProfile.AUTH) != (server_code is not None):
        raise InvalidRequest("serverCode is required for auth and refused for sign")
    if server_code is not None:
        validate_part(server_code, "serverCode")
    if len(csr_pem) > MAX_CSR_BYTES:
        raise InvalidRequest(f"The CSR is larger than {MAX_CSR_BYTES} bytes")
    verified = verify_csr(csr_pem.encode("utf-8", "replace"))
    der = verified.csr.public_bytes(Encoding.DER)
    digest = hashlib.sha256(der).hexdigest()
    token = new_secret()
    async with db.transaction() as s:
        row = await member_row(s, member)
        verify_csr_subject(verified.csr, usage, _subject(member, row, server_code))
        seen = await s.execute(
            select(CertificateRequest.id).where(CertificateRequest.csr_sha256 == digest)
        )
        if seen.first():
            raise Conflict("This CSR has already been submitted")
        req = CertificateRequest(
            status=RequestStatus.PENDING.value,
            usage=usage.value,
            member_class=member.member_class,
            member_code=member.member_code,
            server_code=server_code,
            csr_der=der,
            csr_sha256=digest,
            token_hash=hash_secret(token),
            created_at=now,
        )
        s.add(req)
        await s.flush()
        audit.record(
            s,
            actor="public",
            action="certRequest.submit",
            target=f"certRequest:{req.id}",
            now=now,
            detail={"member": str(member), "usage": usage.value, "csr": digest},
        )
        return SubmittedRequest(req.id, token)


async def _pending(s: AsyncSession, request_id: int) -> CertificateRequest:
    row = await s.get(CertificateRequest, request_id)
    if row is not None and row.status == RequestStatus.ISSUING.value:
        raise Conflict(
            f"Certificate request {request_id} is being approved by "
            f"{row.claimed_by}: the CA is issuing"
        )
    # The row is in the session now: this second look-up costs no query.
    return await pending_request(
        s, CertificateRequest, request_id, "Certificate request"
    )


_ISSUING = RequestStatus.ISSUING.value
_PENDING = RequestStatus.PENDING.value


async def _claim(
    db: Database, actor: str, request_id: int, now: dt.datetime
) -> tuple[str, EnrolmentRequest, ClientId]:
    """Move the request to ``issuing`` for this approval, or raise."""
    token = new_secret()
    async with db.transaction() as s:
        claimed = await s.execute(
            update(CertificateRequest)
            .where(
                CertificateRequest.id == request_id,
                or_(
                    CertificateRequest.status == _PENDING,
                    and_(
                        CertificateRequest.status == _ISSUING,
                        CertificateRequest.claimed_at < now - CLAIM_TIMEOUT,
                    ),
                ),
            )
            .values(
                status=_ISSUING, claim_token=token, claimed_by=actor, claimed_at=now
            )
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            await _pending(s, request_id)  # raises NotFound or Conflict
            raise Conflict(f"Certificate request {request_id} changed meanwhile")
        row = await s.get(CertificateRequest, request_id, populate_existing=True)
        if row is None:  # pragma: no cover - updated just above
            raise NotFound(f"Certificate request {request_id} does not exist")
        member = ClientId(
            await instance_identifier(s), row.member_class, row.member_code
        )
        # A member removed meanwhile raises NotFound: the claim rolls back.
        subject = _subject(member, await member_row(s, member), row.server_code)
        enrolment = EnrolmentRequest(_pem(row.csr_der), CertProfile(row.usage), subject)
    return token, enrolment, member


async def _release(db: Database, request_id: int, token: str) -> None:
    """Give a claim back after a failed CA call: the request is pending again."""
    try:
        async with db.transaction() as s:
            await s.execute(
                update(CertificateRequest)
                .where(
                    CertificateRequest.id == request_id,
                    CertificateRequest.claim_token == token,
                )
                .values(
                    status=_PENDING, claim_token=None, claimed_by=None, claimed_at=None
                )
            )
    except JPLinkError:  # the claim then expires after CLAIM_TIMEOUT
        log.exception("Cannot release the claim on certificate request %s", request_id)


async def approve_certificate_request(
    db: Database,
    actor: str,
    request_id: int,
    ca: CaEnrolmentClient,
    *,
    now: dt.datetime,
) -> CertificateRequestView:
    """Have the CA issue the certificate and store it for the requester.

    Exactly one of several concurrent approvals of the same request calls the
    CA: each first claims the request (``pending`` -> ``issuing``) in its own
    short transaction; the others get Conflict.

    Raises:
        NotFound: no such request, or its member was removed.
        Conflict: already decided, being approved by someone else (the CA is
            issuing), or the claim was taken over during the CA call.
        InvalidRequest: the CA refused the CSR (the request is pending again).
        TransportError: the CA could not be reached (pending again).
    """
    token, enrolment, member = await _claim(db, actor, request_id, now)
    try:
        issued = await ca.enrol(enrolment)
    except BaseException:
        await _release(db, request_id, token)
        raise
    async with db.transaction() as s:
        done = await s.execute(
            update(CertificateRequest)
            .where(
                CertificateRequest.id == request_id,
                CertificateRequest.status == _ISSUING,
                CertificateRequest.claim_token == token,
            )
            .values(
                status=RequestStatus.APPROVED.value,
                decided_at=now,
                decided_by=actor,
                certificate_pem=issued.certificate_pem,
                serial=issued.serial,
                claim_token=None,
            )
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(
                f"Certificate request {request_id} was taken over while the CA "
                f"issued serial {issued.serial}; revoke that certificate at the "
                "CA if it is not the one finally stored",
                detail={"serial": issued.serial},
            )
        audit.record(
            s,
            actor=actor,
            action="certRequest.approve",
            target=f"certRequest:{request_id}",
            now=now,
            detail={"serial": issued.serial, "member": str(member)},
        )
        fresh = await s.get(CertificateRequest, request_id, populate_existing=True)
        if fresh is None:  # pragma: no cover - updated just above
            raise NotFound(f"Certificate request {request_id} does not exist")
        return _view(fresh, member.instance)


def _pem(der: bytes) -> str:
    return x509.load_der_x509_csr(der).public_bytes(Encoding.PEM).decode()


async def decline_certificate_request(
    db: Database, actor: str, request_id: int, reason: str, *, now: dt.datetime
) -> CertificateRequestView:
    """Decline with a reason the requester can read.

    Raises:
        NotFound: no such request.
        Conflict: already decided.
        InvalidRequest: an empty or over-long reason.
    """
    check_text(reason, "reason", limit=MAX_TEXT)
    async with db.transaction() as s:
        row = await _pending(s, request_id)
        mark_declined(
            s,
            row,
            actor=actor,
            reason=reason,
            now=now,
            action="certRequest.decline",
            target=f"certRequest:{request_id}",
        )
        return _view(row, await instance_identifier(s))


async def certificate_request_status(
    db: Database, request_id: int, token: str
) -> CertificateRequestView:
    """The requester's view, with the certificate once approved.

    Raises:
        NotFound: no such request or a wrong token (indistinguishable).
    """
    async with db.transaction() as s:
        row = await s.get(CertificateRequest, request_id)
        if row is None or not secret_matches(token, row.token_hash):
            raise NotFound(f"Certificate request {request_id} does not exist")
        return _view(row, await instance_identifier(s))


async def list_certificate_requests(
    db: Database, *, status: RequestStatus | None = None
) -> list[CertificateRequestView]:
    """Certificate requests, oldest first, optionally of one status.

    Raises:
        Conflict: the server is not initialised.
    """
    query = select(CertificateRequest).order_by(CertificateRequest.id)
    if status is not None:
        query = query.where(CertificateRequest.status == status.value)
    async with db.transaction() as s:
        instance = await instance_identifier(s)
        return [_view(r, instance) for r in (await s.execute(query)).scalars()]
