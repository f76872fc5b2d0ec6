"""Security servers: owner, server code, address, auth-cert hashes, clients.

Authentication certificates are listed in shared parameters by
``authCertHash``: "V3+ SHA-256 of the DER cert, base64" (PROTOCOLS.md §9.5).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import select

from jplink.errors import Conflict, InvalidRequest
from jplink.identifiers import ClientId, SecurityServerId
from jplink.storage import Database

from . import audit
from ._lookup import (
    flush_or_conflict,
    instance_identifier,
    member_row,
    server_row,
    subsystem_row,
)
from .models import (
    AuthCert,
    Member,
    MemberClass,
    SecurityServer,
    ServerClient,
    Subsystem,
)

__all__ = [
    "SecurityServerInfo",
    "add_security_server",
    "add_server_client",
    "auth_cert_hash",
    "list_security_servers",
    "register_auth_cert",
]


@dataclass(frozen=True, slots=True)
class SecurityServerInfo:
    """A security server as the global configuration lists it."""

    id: SecurityServerId
    address: str | None
    auth_cert_hashes: tuple[str, ...]
    clients: tuple[ClientId, ...]


def auth_cert_hash(cert_der: bytes) -> str:
    """The shared-params ``authCertHash`` of a certificate.

    Args:
        cert_der: the DER certificate.

    Returns:
        base64 of the SHA-256 of the DER bytes.

    Raises:
        InvalidRequest: the bytes are not a DER X.509 certificate.
    """
    try:
        x509.load_der_x509_certificate(cert_der)
    except ValueError as exc:
        raise InvalidRequest("The authentication certificate is not DER X.509") from exc
    return base64.b64encode(hashlib.sha256(cert_der).digest()).decode("ascii")


async def add_security_server(
    db: Database,
    actor: str,
    server: SecurityServerId,
    *,
    address: str | None = None,
    now: dt.datetime,
) -> SecurityServerInfo:
    """Register a security server of an existing member.

    Raises:
        NotFound: the owner member does not exist.
        Conflict: the server exists.
    """
    async with db.transaction() as s:
        owner = await member_row(s, server.owner)
        taken = (
            await s.execute(
                select(SecurityServer.id).where(
                    SecurityServer.owner_id == owner.id,
                    SecurityServer.server_code == server.server_code,
                )
            )
        ).first()
        if taken:
            raise Conflict(f"Security server {server} already exists")
        s.add(
            SecurityServer(
                owner_id=owner.id,
                server_code=server.server_code,
                address=address,
                created_at=now,
            )
        )
        await flush_or_conflict(s, f"Security server {server} already exists")
        audit.record(
            s,
            actor=actor,
            action="server.add",
            target=str(server),
            now=now,
            detail={"address": address},
        )
    return SecurityServerInfo(server, address, (), ())


async def register_auth_cert(
    db: Database,
    actor: str,
    server: SecurityServerId,
    cert_der: bytes,
    *,
    now: dt.datetime,
) -> str:
    """Register an authentication certificate of a security server.

    Returns:
        The certificate's ``authCertHash``.

    Raises:
        InvalidRequest: not a DER certificate.
        NotFound: the server does not exist.
        Conflict: the certificate is already registered (to any server).
    """
    digest = auth_cert_hash(cert_der)
    async with db.transaction() as s:
        row = await server_row(s, server)
        taken = (
            await s.execute(select(AuthCert.id).where(AuthCert.cert_hash == digest))
        ).first()
        if taken:
            raise Conflict("This authentication certificate is already registered")
        s.add(AuthCert(server_id=row.id, cert_hash=digest, cert_der=cert_der))
        await flush_or_conflict(
            s, "This authentication certificate is already registered"
        )
        audit.record(
            s,
            actor=actor,
            action="server.authCert.add",
            target=str(server),
            now=now,
            detail={"authCertHash": digest},
        )
    return digest


async def add_server_client(
    db: Database,
    actor: str,
    server: SecurityServerId,
    client: ClientId,
    *,
    now: dt.datetime,
) -> None:
    """Register a member or subsystem as a client of a security server.

    Raises:
        NotFound: the server or the client does not exist.
        Conflict: the client is already registered there.
    """
    async with db.transaction() as s:
        srv = await server_row(s, server)
        member = await member_row(s, client)
        sub_id = (await subsystem_row(s, client)).id if client.subsystem_code else None
        taken = (
            await s.execute(
                select(ServerClient.id).where(
                    ServerClient.server_id == srv.id,
                    ServerClient.member_id == member.id,
                    ServerClient.subsystem_id.is_(None)
                    if sub_id is None
                    else ServerClient.subsystem_id == sub_id,
                )
            )
        ).first()
        if taken:
            raise Conflict(f"{client} is already a client of {server}")
        s.add(ServerClient(server_id=srv.id, member_id=member.id, subsystem_id=sub_id))
        await flush_or_conflict(s, f"{client} is already a client of {server}")
        audit.record(
            s,
            actor=actor,
            action="server.client.add",
            target=str(server),
            now=now,
            detail={"client": str(client)},
        )


async def list_security_servers(db: Database) -> list[SecurityServerInfo]:
    """All security servers with their auth-cert hashes and clients.

    Raises:
        Conflict: the server is not initialised.
    """
    async with db.transaction() as s:
        instance = await instance_identifier(s)
        members = {
            m.id: ClientId(instance, c.code, m.member_code)
            for m, c in (
                await s.execute(
                    select(Member, MemberClass).join(
                        MemberClass, Member.member_class_id == MemberClass.id
                    )
                )
            ).all()
        }
        subs = {
            sub.id: members[sub.member_id].subsystem(sub.subsystem_code)
            for sub in (await s.execute(select(Subsystem))).scalars()
        }
        hashes: dict[int, list[str]] = {}
        for cert in (await s.execute(select(AuthCert).order_by(AuthCert.id))).scalars():
            hashes.setdefault(cert.server_id, []).append(cert.cert_hash)
        clients: dict[int, list[ClientId]] = {}
        for c in (await s.execute(select(ServerClient))).scalars():
            cid = subs[c.subsystem_id] if c.subsystem_id else members[c.member_id]
            clients.setdefault(c.server_id, []).append(cid)
        servers = (
            await s.execute(select(SecurityServer).order_by(SecurityServer.id))
        ).scalars()
        result = []
        for srv in servers:
            owner = members[srv.owner_id]
            result.append(
                SecurityServerInfo(
                    id=SecurityServerId(
                        owner.instance,
                        owner.member_class,
                        owner.member_code,
                        srv.server_code,
                    ),
                    address=srv.address,
                    auth_cert_hashes=tuple(hashes.get(srv.id, [])),
                    clients=tuple(sorted(clients.get(srv.id, []))),
                )
            )
    return result
