"""Management requests (PR-MSERV): store verified requests, approve, decline.

A request reaches :func:`submit_management_request` only after
:func:`jplink.protocol.management.verify_management_request` returned; the
registry checks (:func:`~central_server.management_apply.check_request`) and
the insert share one transaction, so a request that does not fit the registry
is stored nowhere. The same X-Road message (sender and message id) or the
same pending change twice is a :class:`~jplink.errors.Conflict`.

Approval applies the change and writes the audit rows in one transaction.
With auto-approval on (:func:`set_auto_approve`), ``authCertReg`` and
``clientReg`` whose member signature verified are applied at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import (
    CertificateValidationError,
    Conflict,
    InvalidRequest,
)
from jplink.identifiers import ClientId, parse_client_id, parse_security_server_id
from jplink.protocol.management import (
    ManagementRequest,
    ManagementRequestType,
    ManagementTrust,
    VerifiedManagementRequest,
)
from jplink.storage import Database

from . import audit, registry, trust
from ._lookup import flush_or_conflict, instance_identifier
from .management_apply import apply_request, check_request
from .management_models import ManagementRequestRow
from .member_requests import RequestStatus, mark_declined, pending_request
from .models import SystemParameter
from .servers import auth_cert_hash

__all__ = [
    "AUTO_APPROVE_KEY",
    "ManagementRequestView",
    "approve_management_request",
    "decline_management_request",
    "get_auto_approve",
    "list_management_requests",
    "management_context",
    "set_auto_approve",
    "submit_management_request",
]

#: System parameter switching auto-approval on ("true") or off.
AUTO_APPROVE_KEY = "managementAutoApprove"
_AUTO_TYPES = frozenset(
    {ManagementRequestType.AUTH_CERT_REG, ManagementRequestType.CLIENT_REG}
)


@dataclass(frozen=True, slots=True)
class ManagementRequestView:
    """A stored management request as the operator sees it."""

    id: int
    request: ManagementRequest
    status: RequestStatus
    sender: str
    message_id: str
    signer: str | None
    auto_approved: bool
    created_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None
    decline_reason: str | None


async def management_context(db: Database) -> tuple[ManagementTrust, ClientId]:
    """The trust material and management service provider for verification.

    Returns:
        ``(trust, provider)``: approved CAs (authentication-only CAs are auth
        anchors only), OCSP responder certificates, ``ocspFreshnessSeconds``,
        and the configured ``managementServiceProvider`` client id.

    Raises:
        Conflict: the server is not initialised, or no management service
            provider is configured (requests cannot be addressed then).
    """
    params = await registry.get_parameters(db)
    if params.management_service_provider is None:
        raise Conflict(
            "The management service provider is not configured", code="InternalError"
        )
    cas = await trust.list_approved_cas(db)
    load = x509.load_der_x509_certificate
    responders = [
        load(info.ocsp_cert_der)
        for ca in cas
        for info in (ca.top_ca, *ca.intermediates)
        if info.ocsp_cert_der
    ]
    result = ManagementTrust(
        auth_anchors=tuple(load(ca.top_ca.cert_der) for ca in cas),
        sign_anchors=tuple(
            load(ca.top_ca.cert_der) for ca in cas if not ca.authentication_only
        ),
        intermediates=tuple(load(i.cert_der) for ca in cas for i in ca.intermediates),
        ocsp_responders=tuple(responders),
        ocsp_freshness=dt.timedelta(seconds=params.ocsp_freshness_seconds),
    )
    return result, params.management_service_provider


def _pending_key(req: ManagementRequest) -> str:
    if req.type is ManagementRequestType.AUTH_CERT_REG:
        assert req.auth_cert is not None
        text = f"authCertReg:{auth_cert_hash(req.auth_cert)}"
    else:
        text = f"{req.type.value}:{req.server}:{req.client or ''}"
        if req.auth_cert is not None:
            text += f":{auth_cert_hash(req.auth_cert)}"
    return hashlib.sha256(text.encode()).hexdigest()


def _request(row: ManagementRequestRow) -> ManagementRequest:
    return ManagementRequest(
        ManagementRequestType(row.type),
        parse_security_server_id(row.server),
        client=parse_client_id(row.client) if row.client else None,
        address=row.address,
        auth_cert=row.auth_cert_der,
        subsystem_name=row.subsystem_name,
        message=row.message_text,
    )


def _view(row: ManagementRequestRow) -> ManagementRequestView:
    return ManagementRequestView(
        id=row.id,
        request=_request(row),
        status=RequestStatus(row.status),
        sender=row.sender,
        message_id=row.message_id,
        signer=row.signer,
        auto_approved=row.auto_approved,
        created_at=audit.aware(row.created_at),
        decided_at=audit.aware(row.decided_at) if row.decided_at else None,
        decided_by=row.decided_by,
        decline_reason=row.decline_reason,
    )


async def get_auto_approve(db: Database) -> bool:
    """Whether verified authCertReg/clientReg requests are applied at once."""
    async with db.transaction() as s:
        row = await s.get(SystemParameter, AUTO_APPROVE_KEY)
        return row is not None and row.value == "true"


async def set_auto_approve(
    db: Database, actor: str, enabled: bool, *, now: dt.datetime
) -> bool:
    """Switch auto-approval on or off (audited).

    Raises:
        Conflict: the server is not initialised.
    """
    async with db.transaction() as s:
        await instance_identifier(s)
        row = await s.get(SystemParameter, AUTO_APPROVE_KEY)
        value = "true" if enabled else "false"
        if row is None:
            s.add(SystemParameter(key=AUTO_APPROVE_KEY, value=value))
        else:
            row.value = value
        audit.record(
            s,
            actor=actor,
            action="management.autoApprove",
            target=AUTO_APPROVE_KEY,
            now=now,
            detail={"enabled": enabled},
        )
    return enabled


async def submit_management_request(
    db: Database, verified: VerifiedManagementRequest, *, now: dt.datetime
) -> ManagementRequestView | None:
    """Store a verified request as pending (or apply it, with auto-approval).

    Args:
        db: the central server's database.
        verified: the result of ``verify_management_request``.
        now: the time recorded.

    Returns:
        The stored request, or None for an ``authCertReg`` dry run (checked,
        not stored).

    Raises:
        CertificateValidationError: an ``authCertReg`` whose auth certificate
            status was not verified (fail closed, whatever the trust said).
        InvalidRequest, NotFound, Conflict: the registry cannot take it
            (:func:`~central_server.management_apply.check_request`), or the
            same message or the same pending change was already received.
    """
    req, message = verified.request, verified.message
    if req.type is ManagementRequestType.AUTH_CERT_REG and verified.auth_ocsp is None:
        raise CertificateValidationError(
            "The authentication certificate has no verified OCSP status",
            code="CertValidation",
        )
    sender = str(message.client)
    async with db.transaction() as s:
        replay = (
            await s.execute(
                select(ManagementRequestRow.id).where(
                    ManagementRequestRow.sender == sender,
                    ManagementRequestRow.message_id == message.id,
                )
            )
        ).first()
        if replay:
            raise Conflict(f"Message {message.id} of {sender} was already received")
        key = _pending_key(req)
        pending = (
            await s.execute(
                select(ManagementRequestRow.id).where(
                    ManagementRequestRow.pending_key == key
                )
            )
        ).first()
        if pending:
            raise Conflict(f"The same {req.type.value} request is already pending")
        await check_request(s, req)
        if req.dry_run:
            return None
        auto = (
            req.type in _AUTO_TYPES
            and verified.signer is not None
            and (row_ := await s.get(SystemParameter, AUTO_APPROVE_KEY)) is not None
            and row_.value == "true"
        )
        row = ManagementRequestRow(
            type=req.type.value,
            status=(RequestStatus.APPROVED if auto else RequestStatus.PENDING).value,
            server=str(req.server),
            client=str(req.client) if req.client else None,
            address=req.address,
            auth_cert_der=req.auth_cert,
            auth_cert_hash=auth_cert_hash(req.auth_cert) if req.auth_cert else None,
            subsystem_name=req.subsystem_name,
            message_text=req.message,
            sender=sender,
            message_id=message.id,
            signer=str(verified.signer) if verified.signer else None,
            pending_key=None if auto else key,
            auto_approved=auto,
            soap=message.soap,
            created_at=now,
            decided_at=now if auto else None,
            decided_by="auto" if auto else None,
        )
        s.add(row)
        await flush_or_conflict(s, "The same request was already received")
        actor = f"mgmt:{sender}"
        audit.record(
            s,
            actor=actor,
            action="management.submit",
            target=str(row.id),
            now=now,
            detail={"type": req.type.value, "server": str(req.server)},
        )
        if auto:
            await _apply(s, row, req, actor="auto", now=now)
        return _view(row)


async def _apply(
    s: AsyncSession,
    row: ManagementRequestRow,
    req: ManagementRequest,
    *,
    actor: str,
    now: dt.datetime,
) -> None:
    action = await apply_request(s, req, now=now)
    await flush_or_conflict(s, "The change clashes with the registry")
    audit.record(
        s,
        actor=actor,
        action=action,
        target=str(req.server),
        now=now,
        detail={"managementRequest": row.id, "client": str(req.client or "")},
    )


async def list_management_requests(
    db: Database, *, status: RequestStatus | None = None
) -> list[ManagementRequestView]:
    """Stored management requests, oldest first, optionally by status.

    Raises:
        StorageError: the database failed.
    """
    async with db.transaction() as s:
        query = select(ManagementRequestRow).order_by(ManagementRequestRow.id)
        if status is not None:
            query = query.where(ManagementRequestRow.status == status.value)
        return [_view(r) for r in (await s.execute(query)).scalars()]


async def _pending_row(s: AsyncSession, request_id: int) -> ManagementRequestRow:
    return await pending_request(
        s, ManagementRequestRow, request_id, "Management request"
    )


async def approve_management_request(
    db: Database, actor: str, request_id: int, *, now: dt.datetime
) -> ManagementRequestView:
    """Approve a pending request: apply it and audit it in one transaction.

    Raises:
        NotFound: no such request.
        Conflict: the request is not pending, or the registry changed so it no
            longer applies (nothing is changed then).
        InvalidRequest: the change is not allowed any more.
    """
    async with db.transaction() as s:
        row = await _pending_row(s, request_id)
        req = _request(row)
        await _apply(s, row, req, actor=actor, now=now)
        row.status = RequestStatus.APPROVED.value
        row.pending_key = None
        row.decided_at, row.decided_by = now, actor
        audit.record(
            s,
            actor=actor,
            action="management.approve",
            target=str(row.id),
            now=now,
            detail={"type": row.type},
        )
        return _view(row)


async def decline_management_request(
    db: Database, actor: str, request_id: int, reason: str, *, now: dt.datetime
) -> ManagementRequestView:
    """Decline a pending request with a reason.

    Raises:
        InvalidRequest: an empty reason.
        NotFound: no such request.
        Conflict: the request is not pending.
    """
    if not reason.strip():
        raise InvalidRequest("A decline needs a reason")
    async with db.transaction() as s:
        row = await _pending_row(s, request_id)
        row.pending_key = None
        mark_declined(
            s,
            row,
            actor=actor,
            reason=reason,
            now=now,
            action="management.decline",
            target=str(row.id),
            detail={"type": row.type},
        )
        return _view(row)
