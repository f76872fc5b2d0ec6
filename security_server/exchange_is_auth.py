"""How information systems must connect to the client proxy, per client.

X-Road's ``isAuthentication`` of a client (REST API ``connection_type``):

- ``HTTP`` (X-Road NOSSL): plain HTTP or HTTPS, with or without a certificate;
- ``HTTPS_NO_AUTH`` (SSLNOAUTH): TLS required, no client certificate needed;
- ``HTTPS`` (SSLAUTH): TLS with a client certificate registered for the client.

PROTOCOLS.md §7.1: "The IS must be authenticated per that client's connection
type (HTTP / HTTPS / HTTPS_NO_AUTH with a registered IS TLS cert):
``Server.ClientProxy.SslAuthenticationFailed``". A client without a setting
is ``HTTP``, as X-Road ("NOSSL if no value is specified").

:func:`verify_is_authentication` is the pure decision; :class:`IsAuthView`
reads the settings (cached like the rest of the server configuration);
the ``set_connection_type`` / ``*_is_certificate`` functions are the service
layer behind ``jplink ss clients set-connection-type|is-cert``.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import delete, select

from jplink.errors import CertificateValidationError, Conflict, NotFound
from jplink.identifiers import ClientId
from jplink.storage import Database

from . import audit
from .client_tls import IsCertificateInfo, info_of, load_is_certificate
from .clients import find_client
from .models import Client, ClientConnection, ClientIsCertificate
from .single_flight import SingleFlight

__all__ = [
    "SSL_AUTH_FAILED",
    "ConnectionType",
    "IsAuthView",
    "IsAuthentication",
    "IsCertificateInfo",
    "IsChannel",
    "add_is_certificate",
    "delete_is_certificate",
    "get_connection_type",
    "list_is_certificates",
    "set_connection_type",
    "verify_is_authentication",
]

#: X-Road ``X_SSL_AUTH_FAILED``; the client proxy prefixes it ``Server.ClientProxy``.
SSL_AUTH_FAILED = "SslAuthenticationFailed"


class ConnectionType(enum.Enum):
    """A client's information-system connection type (X-Road REST values)."""

    HTTP = "HTTP"
    HTTPS_NO_AUTH = "HTTPS_NO_AUTH"
    HTTPS = "HTTPS"


@dataclass(frozen=True, slots=True)
class IsChannel:
    """How a request reached the client proxy.

    Attributes:
        tls: whether it came over TLS (port 8443).
        cert_der: the information system's TLS certificate, if it sent one.
    """

    tls: bool
    cert_der: bytes | None = None


PLAIN = IsChannel(tls=False)


@dataclass(frozen=True, slots=True)
class IsAuthentication:
    """A verified information-system connection.

    Attributes:
        client: the client the request is made for.
        connection_type: the client's setting that was satisfied.
        cert_sha256: hex SHA-256 of the matching registered certificate
            (``HTTPS`` only).
    """

    client: ClientId
    connection_type: ConnectionType
    cert_sha256: str | None = None


def verify_is_authentication(
    client: ClientId,
    connection_type: ConnectionType,
    registered_sha256: frozenset[str],
    channel: IsChannel,
) -> IsAuthentication:
    """Decide whether ``channel`` satisfies the client's connection type.

    Args:
        client: the request's ``client`` header.
        connection_type: the client's setting.
        registered_sha256: hex SHA-256 of the client's IS certificates.
        channel: how the request arrived.

    Returns:
        The verified connection.

    Raises:
        CertificateValidationError: code ``SslAuthenticationFailed``.
    """
    if connection_type is ConnectionType.HTTP:
        return IsAuthentication(client, connection_type)
    if not channel.tls:
        # X-Road IsAuthentication: "Client (%s) specifies HTTPS NO AUTH but
        # client made plaintext connection" (the same for HTTPS).
        raise CertificateValidationError(
            f"Client ({client}) specifies {connection_type.value} but the "
            "information system made a plaintext connection",
            code=SSL_AUTH_FAILED,
        )
    if connection_type is ConnectionType.HTTPS_NO_AUTH:
        return IsAuthentication(client, connection_type)
    if channel.cert_der is None:
        raise CertificateValidationError(
            f"Client ({client}) specifies HTTPS but the information system did "
            "not supply a TLS certificate",
            code=SSL_AUTH_FAILED,
        )
    if not registered_sha256:
        raise CertificateValidationError(
            f"Client ({client}) has no IS certificates", code=SSL_AUTH_FAILED
        )
    digest = hashlib.sha256(channel.cert_der).hexdigest()
    if digest not in registered_sha256:
        raise CertificateValidationError(
            f"Client ({client}) TLS certificate does not match any IS certificates",
            code=SSL_AUTH_FAILED,
            detail={"cert_sha256": digest},
        )
    return IsAuthentication(client, connection_type, digest)


class IsAuthView:
    """The connection settings of clients, re-read at most every period.

    Args:
        db: the server's database.
        cache_seconds: how long a client's settings are reused (the server
            configuration cache period); 0 reads them for every request.
    """

    def __init__(self, db: Database, *, cache_seconds: float = 5.0) -> None:
        self._db = db
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, ConnectionType, frozenset[str]]] = {}
        self._loads: SingleFlight[tuple[ConnectionType, frozenset[str]]]
        self._loads = SingleFlight()

    async def verify(self, client: ClientId, channel: IsChannel) -> IsAuthentication:
        """Check the information system's connection for ``client``.

        Raises:
            CertificateValidationError: code ``SslAuthenticationFailed``.
            StorageError: the database failed.
        """
        key = str(client)
        cached = self._cache.get(key)
        if cached is None or time.monotonic() - cached[0] >= self._ttl:
            started = time.monotonic()
            if self._ttl > 0:
                ctype, certs = await self._loads.run(key, lambda: self._load(key))
            else:  # every request reads its own settings
                ctype, certs = await self._load(key)
            cached = (started, ctype, certs)
            if self._ttl > 0:
                self._cache[key] = cached
        return verify_is_authentication(client, cached[1], cached[2], channel)

    async def _load(self, identifier: str) -> tuple[ConnectionType, frozenset[str]]:
        async with self._db.transaction() as session:
            client_pk = await session.scalar(
                select(Client.id).where(Client.identifier == identifier)
            )
            if client_pk is None:  # the caller has checked registration first
                return ConnectionType.HTTP, frozenset()
            value = await session.scalar(
                select(ClientConnection.connection_type).where(
                    ClientConnection.client_id == client_pk
                )
            )
            certs = (
                await session.scalars(
                    select(ClientIsCertificate.cert_sha256).where(
                        ClientIsCertificate.client_id == client_pk
                    )
                )
            ).all()
        ctype = ConnectionType(value) if value is not None else ConnectionType.HTTP
        return ctype, frozenset(certs)


async def get_connection_type(db: Database, client_id: ClientId) -> ConnectionType:
    """The client's connection type (``HTTP`` when never set).

    Raises:
        NotFound: code ``ClientNotFound``.
    """
    async with db.transaction() as session:
        row = await find_client(session, client_id)
        value = await session.scalar(
            select(ClientConnection.connection_type).where(
                ClientConnection.client_id == row.id
            )
        )
    return ConnectionType(value) if value is not None else ConnectionType.HTTP


async def set_connection_type(
    db: Database,
    actor: str,
    client_id: ClientId,
    connection_type: ConnectionType,
    *,
    now: dt.datetime,
) -> ConnectionType:
    """Set how the client's information systems must connect.

    Raises:
        NotFound: code ``ClientNotFound``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        row = await find_client(session, client_id)
        setting = await session.scalar(
            select(ClientConnection).where(ClientConnection.client_id == row.id)
        )
        if setting is None:
            setting = ClientConnection(client_id=row.id)
            session.add(setting)
        setting.connection_type = connection_type.value
        setting.updated_at = now
        audit.record(
            session,
            actor=actor,
            action="client.connection_type",
            target=str(client_id),
            now=now,
            detail={"connection_type": connection_type.value},
        )
    return connection_type


async def add_is_certificate(
    db: Database, actor: str, client_id: ClientId, data: bytes, *, now: dt.datetime
) -> IsCertificateInfo:
    """Register an information system's TLS certificate (PEM or DER).

    Raises:
        InvalidRequest: code ``InvalidCertificate``: not a certificate.
        NotFound: code ``ClientNotFound``.
        Conflict: code ``CertificateExists``.
        StorageError: the database failed.
    """
    cert, der = load_is_certificate(data)
    info = info_of(cert, der, now)
    async with db.transaction() as session:
        row = await find_client(session, client_id)
        if await session.scalar(
            select(ClientIsCertificate.id).where(
                ClientIsCertificate.client_id == row.id,
                ClientIsCertificate.cert_sha256 == info.sha256,
            )
        ):
            raise Conflict(
                f"The certificate is already registered for {client_id}",
                code="CertificateExists",
            )
        session.add(
            ClientIsCertificate(
                client_id=row.id,
                cert_sha256=info.sha256,
                cert_der=der,
                subject=info.subject,
                not_after=info.not_after,
                added_at=now,
            )
        )
        audit.record(
            session,
            actor=actor,
            action="client.is_cert.add",
            target=str(client_id),
            now=now,
            detail={"cert_sha256": info.sha256},
        )
    return info


async def list_is_certificates(
    db: Database, client_id: ClientId
) -> list[IsCertificateInfo]:
    """The client's registered IS certificates, oldest first.

    Raises:
        NotFound: code ``ClientNotFound``.
    """
    async with db.transaction() as session:
        row = await find_client(session, client_id)
        rows = (
            await session.scalars(
                select(ClientIsCertificate)
                .where(ClientIsCertificate.client_id == row.id)
                .order_by(ClientIsCertificate.id)
            )
        ).all()
        return [
            IsCertificateInfo(r.cert_sha256, r.subject, r.not_after, r.added_at)
            for r in rows
        ]


async def delete_is_certificate(
    db: Database, actor: str, client_id: ClientId, sha256: str, *, now: dt.datetime
) -> None:
    """Remove a registered IS certificate (by its hex SHA-256).

    Raises:
        NotFound: code ``ClientNotFound`` or ``CertificateNotFound``.
    """
    wanted = sha256.strip().lower()
    async with db.transaction() as session:
        row = await find_client(session, client_id)
        result = await session.execute(
            delete(ClientIsCertificate).where(
                ClientIsCertificate.client_id == row.id,
                ClientIsCertificate.cert_sha256 == wanted,
            )
        )
        if not getattr(result, "rowcount", 0):
            raise NotFound(
                f"No IS certificate {wanted} for {client_id}",
                code="CertificateNotFound",
            )
        audit.record(
            session,
            actor=actor,
            action="client.is_cert.delete",
            target=str(client_id),
            now=now,
            detail={"cert_sha256": wanted},
        )
