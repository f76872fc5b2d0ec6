"""Clients of this security server: the owner, other members and subsystems.

A client is added in state ``saved``; the registration flow (issue 7) moves
it through ``registration-in-progress`` to ``registered``. Only clients of
this server's instance can be added, and the owner cannot be deleted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.identifiers import ClientId, parse_client_id
from jplink.storage import Database

from . import audit
from .identity import load_identity
from .models import Client
from .states import ClientState

__all__ = [
    "ClientInfo",
    "add_client",
    "delete_client",
    "find_client",
    "list_clients",
    "set_client_state",
]


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A client as shown to operators."""

    client_id: ClientId
    name: str
    state: ClientState
    is_owner: bool
    created_at: dt.datetime


async def find_client(session: AsyncSession, client_id: ClientId) -> Client:
    """The client row of ``client_id``.

    Raises:
        NotFound: code ``ClientNotFound``.
    """
    row = (
        await session.execute(select(Client).where(Client.identifier == str(client_id)))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(
            f"{client_id} is not a client of this server", code="ClientNotFound"
        )
    return row


def _info(row: Client, owner: ClientId) -> ClientInfo:
    client_id = parse_client_id(row.identifier)
    return ClientInfo(
        client_id,
        row.name,
        ClientState(row.state),
        client_id == owner,
        audit.aware(row.created_at),
    )


async def add_client(
    db: Database, actor: str, client_id: ClientId, *, name: str = "", now: dt.datetime
) -> ClientInfo:
    """Add a member or subsystem as a client (state ``saved``).

    Args:
        db: the server's database.
        actor: who (audit log).
        client_id: ``MEMBER:...`` or ``SUBSYSTEM:...`` of this server's instance.
        name: the member's name (used in its signing certificates' ``O``).
        now: when.

    Raises:
        NotFound: code ``ServerNotInitialized``.
        InvalidRequest: code ``InstanceMismatch`` for another instance.
        Conflict: code ``ClientExists``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        identity = await load_identity(session)
        if client_id.instance != identity.server_id.instance:
            raise InvalidRequest(
                f"{client_id} is not of this server's instance "
                f"{identity.server_id.instance!r}",
                code="InstanceMismatch",
            )
        if await session.scalar(
            select(Client.id).where(Client.identifier == str(client_id))
        ):
            raise Conflict(f"{client_id} is already a client", code="ClientExists")
        row = Client(
            identifier=str(client_id),
            name=name,
            state=ClientState.SAVED.value,
            created_at=now,
        )
        session.add(row)
        audit.record(
            session, actor=actor, action="client.add", target=str(client_id), now=now
        )
        await session.flush()
        return _info(row, identity.owner)


async def list_clients(db: Database) -> list[ClientInfo]:
    """Every client, in identifier order.

    Raises:
        NotFound: code ``ServerNotInitialized``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        identity = await load_identity(session)
        rows = (await session.execute(select(Client))).scalars()
        found = [_info(r, identity.owner) for r in rows]
    return sorted(found, key=lambda c: c.client_id)


async def set_client_state(
    db: Database,
    actor: str,
    client_id: ClientId,
    state: ClientState,
    *,
    now: dt.datetime,
) -> ClientInfo:
    """Record a client's registration state (used by the registration flow).

    Raises:
        NotFound: code ``ClientNotFound``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        identity = await load_identity(session)
        row = await find_client(session, client_id)
        before, row.state = row.state, state.value
        audit.record(
            session,
            actor=actor,
            action="client.state",
            target=str(client_id),
            now=now,
            detail={"from": before, "to": state.value},
        )
        return _info(row, identity.owner)


async def delete_client(
    db: Database, actor: str, client_id: ClientId, *, now: dt.datetime
) -> None:
    """Delete a client with its service descriptions, access rights and groups.

    Raises:
        NotFound: code ``ClientNotFound``.
        Conflict: code ``OwnerCannotBeDeleted`` for the owner.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        identity = await load_identity(session)
        if client_id == identity.owner:
            raise Conflict(
                "The owner member cannot be deleted", code="OwnerCannotBeDeleted"
            )
        row = await find_client(session, client_id)
        await session.delete(row)
        audit.record(
            session, actor=actor, action="client.delete", target=str(client_id), now=now
        )
