"""Row lookups by X-Road identifier, shared by the service modules.

Every lookup checks that the identifier belongs to this instance and raises
:class:`~jplink.errors.NotFound` when the row does not exist, so callers never
act on a half-resolved identifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.identifiers import ClientId, SecurityServerId

from .models import (
    Base,
    Member,
    MemberClass,
    SecurityServer,
    Subsystem,
    SystemParameter,
)

__all__ = [
    "INSTANCE_KEY",
    "ClientIndex",
    "check_instance",
    "client_criteria",
    "client_index",
    "client_keys",
    "flush_or_conflict",
    "insert_unique",
    "instance_identifier",
    "member_class_row",
    "member_row",
    "server_row",
    "subsystem_row",
]

INSTANCE_KEY = "instanceIdentifier"

R = TypeVar("R")


async def _one_or_not_found(session: AsyncSession, query: Select[R], message: str) -> R:
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(message)
    return row


async def instance_identifier(session: AsyncSession) -> str:
    """The instance identifier set by ``init``.

    Raises:
        Conflict: if the central server has not been initialised.
    """
    row = await session.get(SystemParameter, INSTANCE_KEY)
    if row is None:
        raise Conflict("The central server is not initialised (run 'init')")
    return row.value


async def check_instance(session: AsyncSession, instance: str) -> None:
    """Refuse an identifier of another X-Road instance.

    Raises:
        InvalidRequest: ``instance`` is not this server's instance.
        Conflict: the server is not initialised.
    """
    own = await instance_identifier(session)
    if instance != own:
        raise InvalidRequest(
            f"Identifier belongs to instance {instance!r}, not {own!r}",
            detail={"instance": instance},
        )


async def member_class_row(session: AsyncSession, code: str) -> MemberClass:
    """The member class ``code``.

    Raises:
        InvalidRequest: if no such member class is defined.
    """
    row = (
        await session.execute(select(MemberClass).where(MemberClass.code == code))
    ).scalar_one_or_none()
    if row is None:
        raise InvalidRequest(
            f"Unknown member class {code!r}", detail={"memberClass": code}
        )
    return row


async def member_row(session: AsyncSession, member: ClientId) -> Member:
    """The member of ``member`` (its subsystem part is ignored).

    Raises:
        InvalidRequest: wrong instance or unknown member class.
        NotFound: no such member.
    """
    await check_instance(session, member.instance)
    cls = await member_class_row(session, member.member_class)
    query = select(Member).where(
        Member.member_class_id == cls.id, Member.member_code == member.member_code
    )
    return await _one_or_not_found(
        session, query, f"Member {member.member} does not exist"
    )


async def subsystem_row(session: AsyncSession, client: ClientId) -> Subsystem:
    """The subsystem ``client``.

    Raises:
        InvalidRequest: ``client`` is not a subsystem identifier.
        NotFound: no such member or subsystem.
    """
    if client.subsystem_code is None:
        raise InvalidRequest(f"{client} is not a subsystem")
    member = await member_row(session, client)
    query = select(Subsystem).where(
        Subsystem.member_id == member.id,
        Subsystem.subsystem_code == client.subsystem_code,
    )
    return await _one_or_not_found(session, query, f"Subsystem {client} does not exist")


async def client_keys(
    session: AsyncSession, client: ClientId
) -> tuple[int, int | None]:
    """The member row id and (for a subsystem) the subsystem row id of ``client``.

    Raises:
        InvalidRequest: wrong instance or unknown member class.
        NotFound: no such member or subsystem.
    """
    member = await member_row(session, client)
    if client.subsystem_code is None:
        return member.id, None
    return member.id, (await subsystem_row(session, client)).id


def client_criteria(
    member_column: InstrumentedAttribute[int],
    subsystem_column: InstrumentedAttribute[int | None],
    keys: tuple[int, int | None],
) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The criteria matching the (member, subsystem) row pair ``keys``.

    A member's own row has no subsystem: it matches ``IS NULL`` (never ``=``).
    """
    member_id, sub_id = keys
    return (
        member_column == member_id,
        subsystem_column.is_(None) if sub_id is None else subsystem_column == sub_id,
    )


async def server_row(session: AsyncSession, server: SecurityServerId) -> SecurityServer:
    """The security server ``server``.

    Raises:
        NotFound: no such owner or server.
    """
    owner = await member_row(session, server.owner)
    query = select(SecurityServer).where(
        SecurityServer.owner_id == owner.id,
        SecurityServer.server_code == server.server_code,
    )
    return await _one_or_not_found(
        session, query, f"Security server {server} does not exist"
    )


async def flush_or_conflict(session: AsyncSession, message: str) -> None:
    """Flush pending inserts, turning a unique-key clash into Conflict.

    The explicit existence checks before an insert catch the ordinary case;
    this catches the race in which two transactions insert the same key.

    Raises:
        Conflict: a unique constraint was violated (the transaction rolls back).
    """
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(message) from exc


async def insert_unique(
    session: AsyncSession, row: Base, *where: ColumnElement[bool], conflict: str
) -> None:
    """Add ``row`` unless a row matching ``where`` exists already.

    Args:
        session: the transaction.
        row: the new row.
        where: the criteria of the unique key ``row`` would take.
        conflict: the message of the Conflict raised when it is taken.

    Raises:
        Conflict: the key is taken (checked first, and again by the
            database's unique constraint at the flush).
    """
    if (await session.execute(select(exists().where(*where)))).scalar():
        raise Conflict(conflict)
    session.add(row)
    await flush_or_conflict(session, conflict)


@dataclass(frozen=True, slots=True)
class ClientIndex:
    """Every member's and subsystem's identifier, by row id (for listings)."""

    members: Mapping[int, ClientId]
    subsystems: Mapping[int, ClientId]

    def client(self, member_id: int, subsystem_id: int | None) -> ClientId:
        """The identifier a (member, optional subsystem) row pair stands for."""
        if subsystem_id:
            return self.subsystems[subsystem_id]
        return self.members[member_id]


async def client_index(session: AsyncSession, instance: str) -> ClientIndex:
    """Load a :class:`ClientIndex` of the instance in two queries."""
    rows = await session.execute(
        select(Member, MemberClass).join(
            MemberClass, Member.member_class_id == MemberClass.id
        )
    )
    members = {m.id: ClientId(instance, c.code, m.member_code) for m, c in rows.all()}
    subsystems = {
        sub.id: members[sub.member_id].subsystem(sub.subsystem_code)
        for sub in (await session.execute(select(Subsystem))).scalars()
    }
    return ClientIndex(members, subsystems)
