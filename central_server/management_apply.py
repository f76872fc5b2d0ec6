"""Checking a management request against the registry, and applying it.

:func:`check_request` runs when a request arrives (so a request that cannot
apply is answered with a fault and stored nowhere) and again at approval,
inside the approving transaction, because the registry may have changed in
between. :func:`apply_request` makes the change in the caller's transaction;
the caller writes the audit rows and commits, so a change is all or nothing.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.identifiers import ClientId, SecurityServerId
from jplink.protocol.management import ManagementRequest, ManagementRequestType

from ._lookup import check_instance, member_row, server_row
from .models import AuthCert, SecurityServer, ServerClient, Subsystem
from .servers import auth_cert_hash

__all__ = ["apply_request", "check_request"]

T = ManagementRequestType


async def _server(s: AsyncSession, server: SecurityServerId) -> SecurityServer | None:
    try:
        return await server_row(s, server)
    except NotFound:
        await member_row(s, server.owner)  # NotFound for an unknown owner
        return None


async def _subsystem(s: AsyncSession, client: ClientId) -> Subsystem | None:
    member = await member_row(s, client)
    return (
        await s.execute(
            select(Subsystem).where(
                Subsystem.member_id == member.id,
                Subsystem.subsystem_code == client.subsystem_code,
            )
        )
    ).scalar_one_or_none()


async def _client_row(
    s: AsyncSession, srv: SecurityServer, client: ClientId
) -> ServerClient | None:
    member = await member_row(s, client)
    sub_id: int | None = None
    if client.subsystem_code is not None:
        sub = await _subsystem(s, client)
        if sub is None:
            return None
        sub_id = sub.id
    return (
        await s.execute(
            select(ServerClient).where(
                ServerClient.server_id == srv.id,
                ServerClient.member_id == member.id,
                ServerClient.subsystem_id.is_(None)
                if sub_id is None
                else ServerClient.subsystem_id == sub_id,
            )
        )
    ).scalar_one_or_none()


async def _registered_client(
    s: AsyncSession, srv: SecurityServer, req: ManagementRequest
) -> ServerClient:
    assert req.client is not None
    row = await _client_row(s, srv, req.client)
    if row is None:
        raise NotFound(f"{req.client} is not a client of {req.server}")
    return row


async def _auth_cert(s: AsyncSession, der: bytes) -> AuthCert | None:
    digest = auth_cert_hash(der)
    return (
        await s.execute(select(AuthCert).where(AuthCert.cert_hash == digest))
    ).scalar_one_or_none()


async def check_request(s: AsyncSession, req: ManagementRequest) -> None:
    """Refuse a request the registry cannot take.

    Raises:
        InvalidRequest: identifiers of another instance, a member class that
            does not exist, or a client that cannot be renamed.
        NotFound: the owner, server, client or certificate does not exist.
        Conflict: the change is already in place (e.g. the auth certificate is
            registered, the client already registered or already disabled).
    """
    await check_instance(s, req.server.instance)
    srv = await _server(s, req.server)
    if req.type is T.AUTH_CERT_REG:
        assert req.auth_cert is not None
        if await _auth_cert(s, req.auth_cert) is not None:
            raise Conflict("This authentication certificate is already registered")
        return
    if srv is None:
        raise NotFound(f"Security server {req.server} does not exist")
    if req.type is T.AUTH_CERT_DELETION:
        assert req.auth_cert is not None
        cert = await _auth_cert(s, req.auth_cert)
        if cert is None or cert.server_id != srv.id:
            raise NotFound(f"The certificate is not registered to {req.server}")
    elif req.type is T.CLIENT_REG:
        assert req.client is not None
        await check_instance(s, req.client.instance)
        if await _client_row(s, srv, req.client) is not None:
            raise Conflict(f"{req.client} is already a client of {req.server}")
    elif req.type is T.OWNER_CHANGE:
        await _registered_client(s, srv, req)
        assert req.client is not None
        if req.client.subsystem_code is not None or req.client == req.server.owner:
            raise InvalidRequest("The new owner must be another member")
    elif req.type in (T.CLIENT_DELETION, T.CLIENT_DISABLE, T.CLIENT_ENABLE):
        row = await _registered_client(s, srv, req)
        if req.type is T.CLIENT_DISABLE and not row.enabled:
            raise Conflict(f"{req.client} is already disabled")
        if req.type is T.CLIENT_ENABLE and row.enabled:
            raise Conflict(f"{req.client} is not disabled")
    elif req.type is T.CLIENT_RENAME:
        assert req.client is not None
        if req.client.subsystem_code is None:
            raise InvalidRequest("Only subsystems can be renamed")
        await _registered_client(s, srv, req)
    elif req.type is T.MAINTENANCE_MODE_ENABLE and srv.in_maintenance:
        raise Conflict(f"{req.server} is already in maintenance mode")
    elif req.type is T.MAINTENANCE_MODE_DISABLE and not srv.in_maintenance:
        raise Conflict(f"{req.server} is not in maintenance mode")


async def apply_request(
    s: AsyncSession, req: ManagementRequest, *, now: dt.datetime
) -> str:
    """Make the change ``req`` asks for, in the caller's transaction.

    Returns:
        The audit action of the change (``server.authCert.add`` ...).

    Raises:
        The errors of :func:`check_request`.
    """
    await check_request(s, req)
    srv = await _server(s, req.server)
    if req.type is T.AUTH_CERT_REG:
        assert req.auth_cert is not None
        if srv is None:
            # PR-MSERV §2.3 / DESIGN §3: the first auth cert creates the server.
            owner = await member_row(s, req.server.owner)
            srv = SecurityServer(
                owner_id=owner.id,
                server_code=req.server.server_code,
                address=req.address,
                created_at=now,
            )
            s.add(srv)
            await s.flush()
        elif req.address:
            srv.address = req.address
        s.add(
            AuthCert(
                server_id=srv.id,
                cert_hash=auth_cert_hash(req.auth_cert),
                cert_der=req.auth_cert,
            )
        )
        return "server.authCert.add"
    assert srv is not None  # check_request refused a missing server
    if req.type is T.AUTH_CERT_DELETION:
        assert req.auth_cert is not None
        await s.delete(await _auth_cert(s, req.auth_cert))
        return "server.authCert.delete"
    if req.type is T.CLIENT_REG:
        assert req.client is not None
        member = await member_row(s, req.client)
        sub_id: int | None = None
        if req.client.subsystem_code is not None:
            sub = await _subsystem(s, req.client)
            if sub is None:
                sub = Subsystem(
                    member_id=member.id,
                    subsystem_code=req.client.subsystem_code,
                    name=req.subsystem_name,
                    created_at=now,
                )
                s.add(sub)
                await s.flush()
            elif req.subsystem_name:
                sub.name = req.subsystem_name
            sub_id = sub.id
        s.add(ServerClient(server_id=srv.id, member_id=member.id, subsystem_id=sub_id))
        return "server.client.add"
    if req.type is T.ADDRESS_CHANGE:
        srv.address = req.address
        return "server.address.change"
    if req.type in (T.MAINTENANCE_MODE_ENABLE, T.MAINTENANCE_MODE_DISABLE):
        srv.in_maintenance = req.type is T.MAINTENANCE_MODE_ENABLE
        srv.maintenance_message = req.message if srv.in_maintenance else None
        return f"server.maintenance.{'on' if srv.in_maintenance else 'off'}"
    row = await _registered_client(s, srv, req)
    if req.type is T.CLIENT_DELETION:
        await s.delete(row)
        return "server.client.delete"
    if req.type is T.OWNER_CHANGE:
        assert req.client is not None
        srv.owner_id = (await member_row(s, req.client)).id
        return "server.owner.change"
    if req.type is T.CLIENT_RENAME:
        sub = await _subsystem(s, req.client) if req.client else None
        assert sub is not None
        sub.name = req.subsystem_name
        return "subsystem.rename"
    row.enabled = req.type is T.CLIENT_ENABLE
    return f"server.client.{'enable' if row.enabled else 'disable'}"
