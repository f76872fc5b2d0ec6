"""Row lookups by X-Road identifier, shared by the service modules.

Every lookup checks that the identifier belongs to this instance and raises
:class:`~jplink.errors.NotFound` when the row does not exist, so callers never
act on a half-resolved identifier.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.identifiers import ClientId, SecurityServerId

from .models import Member, MemberClass, SecurityServer, Subsystem, SystemParameter

__all__ = [
    "INSTANCE_KEY",
    "check_instance",
    "flush_or_conflict",
    "instance_identifier",
    "member_class_row",
    "member_row",
    "server_row",
    "subsystem_row",
]

INSTANCE_KEY = "instanceIdentifier"


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
    row = (
        await session.execute(
            select(Member).where(
                Member.member_class_id == cls.id,
                Member.member_code == member.member_code,
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"Member {member.member} does not exist")
    return row


async def subsystem_row(session: AsyncSession, client: ClientId) -> Subsystem:
    """The subsystem ``client``.

    Raises:
        InvalidRequest: ``client`` is not a subsystem identifier.
        NotFound: no such member or subsystem.
    """
    if client.subsystem_code is None:
        raise InvalidRequest(f"{client} is not a subsystem")
    member = await member_row(session, client)
    row = (
        await session.execute(
            select(Subsystem).where(
                Subsystem.member_id == member.id,
                Subsystem.subsystem_code == client.subsystem_code,
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"Subsystem {client} does not exist")
    return row


async def server_row(session: AsyncSession, server: SecurityServerId) -> SecurityServer:
    """The security server ``server``.

    Raises:
        NotFound: no such owner or server.
    """
    owner = await member_row(session, server.owner)
    row = (
        await session.execute(
            select(SecurityServer).where(
                SecurityServer.owner_id == owner.id,
                SecurityServer.server_code == server.server_code,
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"Security server {server} does not exist")
    return row


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
