"""Access rights: which subjects may call a client's service.

A right names a provider client, a service code (rights ignore versions, as
:attr:`jplink.identifiers.ServiceId.unversioned` says) and a subject: a member
or subsystem, one of the provider's local groups, or a global group from the
global configuration. Rights are listed per service and per subject; the
server proxy's check (issue 5) reads the same table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.identifiers import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    XRoadId,
    parse_client_id,
    parse_identifier,
)
from jplink.storage import Database

from . import audit
from .clients import find_client
from .local_groups import find_local_group
from .models import AccessRight, Client
from .services import find_service
from .states import AccessSubjectType

__all__ = [
    "AccessRightInfo",
    "Subject",
    "grant_access",
    "list_rights_for_service",
    "list_rights_for_subject",
    "revoke_access",
]

#: What an access right can be granted to.
Subject = ClientId | LocalGroupId | GlobalGroupId


@dataclass(frozen=True, slots=True)
class AccessRightInfo:
    """One access right."""

    client_id: ClientId
    service_code: str
    subject: Subject
    subject_type: AccessSubjectType
    created_at: dt.datetime


def _subject_type(subject: XRoadId) -> AccessSubjectType:
    if isinstance(subject, ClientId):
        return AccessSubjectType.CLIENT
    if isinstance(subject, LocalGroupId):
        return AccessSubjectType.LOCAL_GROUP
    if isinstance(subject, GlobalGroupId):
        return AccessSubjectType.GLOBAL_GROUP
    raise InvalidRequest(
        f"{subject} cannot be given access rights "
        "(use a member, subsystem, local group or global group)"
    )


def _subject(text: str) -> Subject:
    ident = parse_identifier(text)
    if not isinstance(ident, ClientId | LocalGroupId | GlobalGroupId):
        raise InvalidRequest(f"Stored subject {text!r} is not a right's subject")
    return ident


def _info(client_id: ClientId, row: AccessRight) -> AccessRightInfo:
    return AccessRightInfo(
        client_id,
        row.service_code,
        _subject(row.subject),
        AccessSubjectType(row.subject_type),
        audit.aware(row.created_at),
    )


async def grant_access(
    db: Database,
    actor: str,
    client_id: ClientId,
    service_code: str,
    subject: XRoadId,
    *,
    now: dt.datetime,
) -> AccessRightInfo:
    """Let ``subject`` call the client's service ``service_code``.

    Raises:
        InvalidRequest: a subject that is not a member, subsystem or group.
        NotFound: the client, service or local group does not exist.
        Conflict: code ``AccessRightExists``.
        StorageError: the database failed.
    """
    kind = _subject_type(subject)
    async with db.transaction() as session:
        client = await find_client(session, client_id)
        await find_service(session, client_id, service_code)
        group_pk = None
        if isinstance(subject, LocalGroupId):
            group_pk = (
                await find_local_group(session, client_id, subject.group_code)
            ).id
        if await session.scalar(
            select(AccessRight.id).where(
                AccessRight.client_id == client.id,
                AccessRight.service_code == service_code,
                AccessRight.subject == str(subject),
            )
        ):
            raise Conflict(
                f"{subject} already has access to {service_code}",
                code="AccessRightExists",
            )
        row = AccessRight(
            client_id=client.id,
            service_code=service_code,
            subject_type=kind.value,
            subject=str(subject),
            local_group_id=group_pk,
            created_at=now,
        )
        session.add(row)
        audit.record(
            session,
            actor=actor,
            action="acl.grant",
            target=f"{client_id} {service_code}",
            now=now,
            detail={"subject": str(subject)},
        )
        return _info(client_id, row)


async def revoke_access(
    db: Database,
    actor: str,
    client_id: ClientId,
    service_code: str,
    subject: XRoadId,
    *,
    now: dt.datetime,
) -> None:
    """Remove one access right.

    Raises:
        NotFound: code ``AccessRightNotFound`` (or the client does not exist).
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        client = await find_client(session, client_id)
        row = (
            await session.execute(
                select(AccessRight).where(
                    AccessRight.client_id == client.id,
                    AccessRight.service_code == service_code,
                    AccessRight.subject == str(subject),
                )
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(
                f"{subject} has no access right to {service_code}",
                code="AccessRightNotFound",
            )
        await session.delete(row)
        audit.record(
            session,
            actor=actor,
            action="acl.revoke",
            target=f"{client_id} {service_code}",
            now=now,
            detail={"subject": str(subject)},
        )


async def list_rights_for_service(
    db: Database, client_id: ClientId, service_code: str | None = None
) -> list[AccessRightInfo]:
    """The rights on a client's services (one service, or all).

    Raises:
        NotFound: code ``ClientNotFound`` or ``ServiceNotFound``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        client = await find_client(session, client_id)
        query = select(AccessRight).where(AccessRight.client_id == client.id)
        if service_code is not None:
            await find_service(session, client_id, service_code)
            query = query.where(AccessRight.service_code == service_code)
        rows = (await session.execute(query.order_by(AccessRight.id))).scalars()
        return [_info(client_id, r) for r in rows]


async def list_rights_for_subject(
    db: Database, subject: XRoadId
) -> list[AccessRightInfo]:
    """Every right granted directly to ``subject``, over all provider clients.

    Raises:
        InvalidRequest: a subject that cannot hold rights.
        StorageError: the database failed.
    """
    _subject_type(subject)
    async with db.transaction() as session:
        rows = await session.execute(
            select(AccessRight, Client.identifier)
            .join(Client, AccessRight.client_id == Client.id)
            .where(AccessRight.subject == str(subject))
            .order_by(AccessRight.id)
        )
        return [_info(parse_client_id(ident), r) for r, ident in rows]
