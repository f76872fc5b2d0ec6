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

from jplink.errors import InvalidRequest
from jplink.identifiers import ClientId, SecurityServerId
from jplink.storage import Database

from . import audit
from ._lookup import (
    client_criteria,
    client_index,
    client_keys,
    insert_unique,
    instance_identifier,
    member_row,
    server_row,
)
from .models import (
    AuthCert,
    SecurityServer,
    ServerClient,
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
        await insert_unique(
            s,
            SecurityServer(
                owner_id=owner.id,
                server_code=server.server_code,
                address=address,
                created_at=now,
            ),
            SecurityServer.owner_id == owner.id,
            SecurityServer.server_code == server.server_code,
            conflict=f"Security server {server} already exists",
        )
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
        await insert_unique(
            s,
            AuthCert(server_id=row.id, cert_hash=digest, cert_der=cert_der),
            AuthCert.cert_hash == digest,
            conflict="This authentication certificate is already registered",
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
        keys = await client_keys(s, client)
        await insert_unique(
            s,
            ServerClient(server_id=srv.id, member_id=keys[0], subsystem_id=keys[1]),
            ServerClient.server_id == srv.id,
            *client_criteria(ServerClient.member_id, ServerClient.subsystem_id, keys),
            conflict=f"{client} is already a client of {server}",
        )
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
        index = await client_index(s, instance)
        hashes: dict[int, list[str]] = {}
        for cert in (await s.execute(select(AuthCert).order_by(AuthCert.id))).scalars():
            hashes.setdefault(cert.server_id, []).append(cert.cert_hash)
        clients: dict[int, list[ClientId]] = {}
        for c in (await s.execute(select(ServerClient))).scalars():
            cid = index.client(c.member_id, c.subsystem_id)
            clients.setdefault(c.server_id, []).append(cid)
        servers = (
            await s.execute(select(SecurityServer).order_by(SecurityServer.id))
        ).scalars()
        result = []
        for srv in servers:
            owner = index.members[srv.owner_id]
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
