"""Local groups: a client's named sets of consumers, usable in access rights."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, NotFound
from jplink.identifiers import ClientId, LocalGroupId, parse_client_id
from jplink.storage import Database

from . import audit
from .clients import find_client
from .models import LocalGroup, LocalGroupMember

__all__ = [
    "LocalGroupInfo",
    "add_group_member",
    "add_local_group",
    "delete_local_group",
    "find_local_group",
    "list_local_groups",
    "remove_group_member",
]


@dataclass(frozen=True, slots=True)
class LocalGroupInfo:
    """A local group with its members."""

    client_id: ClientId
    group_id: LocalGroupId
    description: str
    members: tuple[ClientId, ...]


async def find_local_group(
    session: AsyncSession, client_id: ClientId, code: str
) -> LocalGroup:
    """The local group ``code`` of a client.

    Raises:
        NotFound: code ``ClientNotFound`` or ``LocalGroupNotFound``.
    """
    client = await find_client(session, client_id)
    row = (
        await session.execute(
            select(LocalGroup).where(
                LocalGroup.client_id == client.id, LocalGroup.code == code
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(
            f"{client_id} has no local group {code!r}", code="LocalGroupNotFound"
        )
    return row


async def add_local_group(
    db: Database,
    actor: str,
    client_id: ClientId,
    group: LocalGroupId,
    *,
    description: str = "",
    now: dt.datetime,
) -> LocalGroupInfo:
    """Create an empty local group for a client.

    Raises:
        NotFound: code ``ClientNotFound``.
        Conflict: code ``LocalGroupExists``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        client = await find_client(session, client_id)
        if await session.scalar(
            select(LocalGroup.id).where(
                LocalGroup.client_id == client.id, LocalGroup.code == group.group_code
            )
        ):
            raise Conflict(f"{client_id} already has {group}", code="LocalGroupExists")
        session.add(
            LocalGroup(
                client_id=client.id,
                code=group.group_code,
                description=description,
                updated_at=now,
            )
        )
        audit.record(
            session,
            actor=actor,
            action="local-group.add",
            target=f"{client_id} {group}",
            now=now,
        )
    return LocalGroupInfo(client_id, group, description, ())


async def list_local_groups(db: Database, client_id: ClientId) -> list[LocalGroupInfo]:
    """A client's local groups with their members.

    Raises:
        NotFound: code ``ClientNotFound``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        client = await find_client(session, client_id)
        groups = (
            (
                await session.execute(
                    select(LocalGroup)
                    .where(LocalGroup.client_id == client.id)
                    .order_by(LocalGroup.code)
                )
            )
            .scalars()
            .all()
        )
        members = (
            await session.execute(
                select(LocalGroupMember.group_id, LocalGroupMember.member)
                .join(LocalGroup)
                .where(LocalGroup.client_id == client.id)
                .order_by(LocalGroupMember.id)
            )
        ).all()
        return [
            LocalGroupInfo(
                client_id,
                LocalGroupId(g.code),
                g.description,
                tuple(parse_client_id(m) for gid, m in members if gid == g.id),
            )
            for g in groups
        ]


async def delete_local_group(
    db: Database,
    actor: str,
    client_id: ClientId,
    group: LocalGroupId,
    *,
    now: dt.datetime,
) -> None:
    """Delete a local group with its members and the access rights granted to it.

    Raises:
        NotFound: code ``ClientNotFound`` or ``LocalGroupNotFound``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        row = await find_local_group(session, client_id, group.group_code)
        await session.delete(row)
        audit.record(
            session,
            actor=actor,
            action="local-group.delete",
            target=f"{client_id} {group}",
            now=now,
        )


async def add_group_member(
    db: Database,
    actor: str,
    client_id: ClientId,
    group: LocalGroupId,
    member: ClientId,
    *,
    now: dt.datetime,
) -> None:
    """Add a member or subsystem (of any instance) to a local group.

    Raises:
        NotFound: code ``ClientNotFound`` or ``LocalGroupNotFound``.
        Conflict: code ``LocalGroupMemberExists``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        row = await find_local_group(session, client_id, group.group_code)
        if await session.scalar(
            select(LocalGroupMember.id).where(
                LocalGroupMember.group_id == row.id,
                LocalGroupMember.member == str(member),
            )
        ):
            raise Conflict(
                f"{member} is already in {group}", code="LocalGroupMemberExists"
            )
        session.add(LocalGroupMember(group_id=row.id, member=str(member), added_at=now))
        row.updated_at = now
        audit.record(
            session,
            actor=actor,
            action="local-group.add-member",
            target=f"{client_id} {group}",
            now=now,
            detail={"member": str(member)},
        )


async def remove_group_member(
    db: Database,
    actor: str,
    client_id: ClientId,
    group: LocalGroupId,
    member: ClientId,
    *,
    now: dt.datetime,
) -> None:
    """Remove a member from a local group.

    Raises:
        NotFound: the client, group or membership does not exist.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        row = await find_local_group(session, client_id, group.group_code)
        found = (
            await session.execute(
                select(LocalGroupMember).where(
                    LocalGroupMember.group_id == row.id,
                    LocalGroupMember.member == str(member),
                )
            )
        ).scalar_one_or_none()
        if found is None:
            raise NotFound(
                f"{member} is not in {group}", code="LocalGroupMemberNotFound"
            )
        await session.delete(found)
        row.updated_at = now
        audit.record(
            session,
            actor=actor,
            action="local-group.remove-member",
            target=f"{client_id} {group}",
            now=now,
            detail={"member": str(member)},
        )
