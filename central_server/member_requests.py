"""Member-code requests: an organisation asks to join; the operator decides.

The requester gets a request id and a secret token once; with both it can read
the state of its request (and a decline reason), and with nothing else. A
second pending request for the same organisation, or for a member code that is
taken, is a duplicate and refused with Conflict; a decided request cannot be
decided again. Approval creates the member in the same transaction that marks
the request approved, so there is never an approved request without a member.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.identifiers import ClientId, validate_part
from jplink.storage import Database

from . import audit
from ._lookup import instance_identifier, member_class_row
from .models import Member, MemberCodeRequest
from .registry import MemberInfo, insert_member
from .tokens import hash_secret, new_secret, secret_matches

__all__ = [
    "MemberRequestView",
    "RequestStatus",
    "SubmittedRequest",
    "approve_member_request",
    "check_text",
    "decline_member_request",
    "list_member_requests",
    "mark_declined",
    "member_request_status",
    "pending_request",
    "submit_member_request",
]

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
MAX_TEXT = 4000


class RequestStatus(enum.Enum):
    """The life cycle of every request: pending, then approved or declined.

    Certificate requests pass through ``issuing`` on approval: one approver
    has claimed the request and is waiting for the CA.
    """

    PENDING = "pending"
    ISSUING = "issuing"
    APPROVED = "approved"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class SubmittedRequest:
    """What a requester is told once: the id and the secret token."""

    id: int
    token: str


class _Decidable(Protocol):
    """A request row the operator decides (member-code, certificate, management)."""

    id: int
    status: str
    decided_at: dt.datetime | None
    decided_by: str | None
    decline_reason: str | None


R = TypeVar("R", bound=_Decidable)


async def pending_request(
    s: AsyncSession, model: type[R], request_id: int, what: str
) -> R:
    """The request row ``request_id`` of ``model``, if it is still pending.

    Args:
        s: the deciding transaction.
        model: the request table's mapped class.
        request_id: the row id.
        what: names the request in errors (``Member-code request``).

    Raises:
        NotFound: no such request.
        Conflict: the request is already decided.
    """
    row = await s.get(model, request_id)
    if row is None:
        raise NotFound(f"{what} {request_id} does not exist")
    if row.status != RequestStatus.PENDING.value:
        raise Conflict(f"{what} {request_id} is already {row.status}")
    return row


def mark_declined(
    s: AsyncSession,
    row: _Decidable,
    *,
    actor: str,
    reason: str,
    now: dt.datetime,
    action: str,
    target: str,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Decline a pending request row with a reason, and audit it.

    Args:
        s: the deciding transaction (the audit row joins it).
        row: the pending request.
        actor: who declines it.
        reason: why (the requester can read it).
        now: when.
        action: the audit action (``memberRequest.decline`` ...).
        target: the audit target.
        detail: more audit facts; ``reason`` is added.
    """
    row.status = RequestStatus.DECLINED.value
    row.decided_at = now
    row.decided_by = actor
    row.decline_reason = reason
    audit.record(
        s,
        actor=actor,
        action=action,
        target=target,
        now=now,
        detail={**(detail or {}), "reason": reason},
    )


@dataclass(frozen=True, slots=True)
class MemberRequestView:
    """A member-code request as the operator (or, trimmed, the requester) sees it."""

    id: int
    status: RequestStatus
    admin_email: str
    organisation_name: str
    member_class: str
    requested_code: str | None
    extra_info: str
    created_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None
    decline_reason: str | None
    member_code: str | None


def check_text(value: object, name: str, *, limit: int, required: bool = True) -> str:
    """A printable text field of at most ``limit`` characters.

    Raises:
        InvalidRequest: not a string, empty when required, too long, or with
            control characters other than newline and tab.
    """
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string", detail={"field": name})
    if required and not value.strip():
        raise InvalidRequest(f"{name} must not be empty", detail={"field": name})
    if len(value) > limit:
        raise InvalidRequest(
            f"{name} is longer than {limit} characters", detail={"field": name}
        )
    if any(not (c.isprintable() or c in "\n\t") for c in value):
        raise InvalidRequest(
            f"{name} contains control characters", detail={"field": name}
        )
    return value


def _view(r: MemberCodeRequest) -> MemberRequestView:
    return MemberRequestView(
        id=r.id,
        status=RequestStatus(r.status),
        admin_email=r.admin_email,
        organisation_name=r.organisation_name,
        member_class=r.member_class,
        requested_code=r.requested_code,
        extra_info=r.extra_info,
        created_at=audit.aware(r.created_at),
        decided_at=audit.aware(r.decided_at) if r.decided_at else None,
        decided_by=r.decided_by,
        decline_reason=r.decline_reason,
        member_code=r.member_code,
    )


def _org_key(name: str) -> str:
    return " ".join(name.casefold().split())


async def submit_member_request(
    db: Database,
    *,
    admin_email: str,
    organisation_name: str,
    member_class: str,
    requested_code: str | None = None,
    extra_info: str = "",
    now: dt.datetime,
) -> SubmittedRequest:
    """Store a new member-code request from the public registration endpoint.

    Returns:
        The request id and the requester's token (shown once, stored hashed).

    Raises:
        InvalidRequest: a bad e-mail, name, class or code.
        Conflict: a pending request for the organisation exists, or the
            requested member code is taken.
    """
    check_text(admin_email, "adminEmail", limit=320)
    if not _EMAIL.fullmatch(admin_email):
        raise InvalidRequest("adminEmail is not an e-mail address")
    check_text(organisation_name, "organisationName", limit=255)
    check_text(extra_info, "extraInfo", limit=MAX_TEXT, required=False)
    if requested_code is not None:
        validate_part(requested_code, "memberCode")
    token = new_secret()
    async with db.transaction() as s:
        cls = await member_class_row(s, validate_part(member_class, "memberClass"))
        key = _org_key(organisation_name)
        dup = await s.execute(
            select(MemberCodeRequest.id).where(
                MemberCodeRequest.organisation_key == key,
                MemberCodeRequest.status == RequestStatus.PENDING.value,
            )
        )
        if dup.first():
            raise Conflict("A request for this organisation is already pending")
        if requested_code is not None:
            await _refuse_taken_code(s, cls.id, requested_code)
        row = MemberCodeRequest(
            status=RequestStatus.PENDING.value,
            admin_email=admin_email,
            organisation_name=organisation_name,
            organisation_key=key,
            member_class=member_class,
            requested_code=requested_code,
            extra_info=extra_info,
            token_hash=hash_secret(token),
            created_at=now,
        )
        s.add(row)
        await s.flush()
        audit.record(
            s,
            actor="public",
            action="memberRequest.submit",
            target=f"memberRequest:{row.id}",
            now=now,
            detail={"organisation": organisation_name, "memberClass": member_class},
        )
        return SubmittedRequest(row.id, token)


async def _refuse_taken_code(s: AsyncSession, class_id: int, code: str) -> None:
    taken = await s.execute(
        select(func.count())
        .select_from(Member)
        .where(Member.member_class_id == class_id, Member.member_code == code)
    )
    if taken.scalar_one():
        raise Conflict(f"Member code {code!r} is already taken")


async def _pending(s: AsyncSession, request_id: int) -> MemberCodeRequest:
    return await pending_request(
        s, MemberCodeRequest, request_id, "Member-code request"
    )


async def approve_member_request(
    db: Database,
    actor: str,
    request_id: int,
    *,
    member_code: str | None = None,
    now: dt.datetime,
) -> MemberInfo:
    """Approve: assign (or confirm the requested) member code and create the member.

    Raises:
        NotFound: no such request.
        Conflict: already decided, or the member code is taken.
        InvalidRequest: no code given and none requested, or a bad code.
    """
    async with db.transaction() as s:
        row = await _pending(s, request_id)
        code = member_code or row.requested_code
        if code is None:
            raise InvalidRequest("Give the member code to assign")
        instance = await instance_identifier(s)
        member = ClientId(instance, row.member_class, code)
        info = await insert_member(s, actor, member, row.organisation_name, now=now)
        # Conditional on still pending: a concurrent decision makes this a no-op.
        done = await s.execute(
            update(MemberCodeRequest)
            .where(
                MemberCodeRequest.id == request_id,
                MemberCodeRequest.status == RequestStatus.PENDING.value,
            )
            .values(
                status=RequestStatus.APPROVED.value,
                decided_at=now,
                decided_by=actor,
                member_code=code,
            )
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"Member-code request {request_id} was decided meanwhile")
        audit.record(
            s,
            actor=actor,
            action="memberRequest.approve",
            target=f"memberRequest:{request_id}",
            now=now,
            detail={"member": str(member)},
        )
    return info


async def decline_member_request(
    db: Database, actor: str, request_id: int, reason: str, *, now: dt.datetime
) -> MemberRequestView:
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
            action="memberRequest.decline",
            target=f"memberRequest:{request_id}",
        )
        return _view(row)


async def member_request_status(
    db: Database, request_id: int, token: str
) -> MemberRequestView:
    """The requester's view of its request.

    Raises:
        NotFound: no such request *or* a wrong token (indistinguishable, so
            ids cannot be probed).
    """
    async with db.transaction() as s:
        row = await s.get(MemberCodeRequest, request_id)
        if row is None or not secret_matches(token, row.token_hash):
            raise NotFound(f"Member-code request {request_id} does not exist")
        return _view(row)


async def list_member_requests(
    db: Database, *, status: RequestStatus | None = None
) -> list[MemberRequestView]:
    """Member-code requests, oldest first, optionally of one status.

    Raises:
        StorageError: if the database fails.
    """
    query = select(MemberCodeRequest).order_by(MemberCodeRequest.id)
    if status is not None:
        query = query.where(MemberCodeRequest.status == status.value)
    async with db.transaction() as s:
        return [_view(r) for r in (await s.execute(query)).scalars()]
