"""Service descriptions and services of this server's clients.

Adding a WSDL service description turns each of its operations into a
service (code, version, title from ``xrd:title``), addressed at the WSDL's
``soap:address`` (PROTOCOLS.md §11). As in X-Road, a new description starts
*disabled*: the operator sets addresses and access rights, then enables it.
A service code is unique per client, across its descriptions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.identifiers import ClientId, ServiceId
from jplink.storage import Database
from wsdl import parse_wsdl
from wsdl.parse import ParsedOperation

from . import audit
from .clients import find_client
from .models import AccessRight, Service, ServiceDescription
from .states import ServiceDescriptionType

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "ServiceDescriptionInfo",
    "ServiceInfo",
    "WsdlServices",
    "add_wsdl_description",
    "delete_description",
    "find_service",
    "list_descriptions",
    "list_services",
    "parse_wsdl_services",
    "set_description_enabled",
    "update_service",
]

#: Seconds a service may take to answer, unless set per service.
DEFAULT_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """A service as shown to operators."""

    service_id: ServiceId
    title: str | None
    url: str
    timeout_seconds: float
    tls_verify: bool
    description_url: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class ServiceDescriptionInfo:
    """A service description with its services."""

    client_id: ClientId
    url: str
    type: ServiceDescriptionType
    enabled: bool
    disabled_notice: str
    refreshed_at: dt.datetime
    services: tuple[ServiceInfo, ...]


def _service_info(
    client_id: ClientId, row: Service, desc: ServiceDescription
) -> ServiceInfo:
    return ServiceInfo(
        service_id=ServiceId(
            client_id.instance,
            client_id.member_class,
            client_id.member_code,
            client_id.subsystem_code,
            row.service_code,
            row.service_version,
        ),
        title=row.title,
        url=row.url,
        timeout_seconds=row.timeout_seconds,
        tls_verify=row.tls_verify,
        description_url=desc.url,
        enabled=not desc.disabled,
    )


def _check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest(
            f"{url!r}: addresses must be http:// or https:// URLs", code="InvalidUrl"
        )
    return url


@dataclass(frozen=True, slots=True)
class WsdlServices:
    """The services a WSDL document offers.

    Attributes:
        operations: one per service, in document order.
        address: the first ``soap:address``, or the document's own URL when
            it has none (PROTOCOLS.md §11).
    """

    operations: tuple[ParsedOperation, ...]
    address: str

    def new_service(
        self, operation: ParsedOperation, *, description_id: int, client_row_id: int
    ) -> Service:
        """The row of a new service: at :attr:`address`, default timeout, TLS on."""
        return Service(
            description_id=description_id,
            client_id=client_row_id,
            service_code=operation.name,
            service_version=operation.version,
            title=operation.title,
            url=self.address,
            timeout_seconds=DEFAULT_TIMEOUT_SECONDS,
            tls_verify=True,
        )


def parse_wsdl_services(wsdl: bytes, url: str) -> WsdlServices:
    """Parse an (untrusted) WSDL into the services it offers.

    Args:
        wsdl: the document as downloaded.
        url: where it was downloaded from.

    Returns:
        Its operations and the address they are served at.

    Raises:
        XmlSecurityError, MalformedMessage: not a usable WSDL.
        InvalidRequest: code ``InvalidWsdl`` for a WSDL without operations.
    """
    parsed = parse_wsdl(wsdl)
    if not parsed.operations:
        raise InvalidRequest("The WSDL has no operations", code="InvalidWsdl")
    address = parsed.addresses[0] if parsed.addresses else url
    return WsdlServices(parsed.operations, address)


async def add_wsdl_description(
    db: Database,
    actor: str,
    client_id: ClientId,
    *,
    url: str,
    wsdl: bytes,
    now: dt.datetime,
) -> ServiceDescriptionInfo:
    """Add a WSDL service description (disabled) and its services.

    Args:
        db: the server's database.
        actor: who (audit log).
        client_id: the providing client.
        url: where the WSDL was read from (shown and used for refreshes).
        wsdl: the WSDL bytes (untrusted).
        now: when.

    Returns:
        The description with one service per WSDL operation.

    Raises:
        XmlSecurityError, MalformedMessage: the document is not a usable WSDL.
        InvalidRequest: a WSDL without operations or a bad URL.
        NotFound: code ``ClientNotFound``.
        Conflict: code ``ServiceExists`` when the URL or a service code is
            already used by the client.
        StorageError: the database failed.
    """
    _check_url(url)
    parsed = parse_wsdl_services(wsdl, url)
    async with db.transaction() as session:
        client = await find_client(session, client_id)
        if await session.scalar(
            select(ServiceDescription.id).where(
                ServiceDescription.client_id == client.id, ServiceDescription.url == url
            )
        ):
            raise Conflict(f"{client_id} already has {url}", code="ServiceExists")
        codes = [op.name for op in parsed.operations]
        taken = (
            (
                await session.execute(
                    select(Service.service_code).where(
                        Service.client_id == client.id, Service.service_code.in_(codes)
                    )
                )
            )
            .scalars()
            .all()
        )
        if taken:
            raise Conflict(
                f"{client_id} already has service(s) {', '.join(sorted(taken))}",
                code="ServiceExists",
            )
        desc = ServiceDescription(
            client_id=client.id,
            url=url,
            type=ServiceDescriptionType.WSDL.value,
            disabled=True,
            disabled_notice="",
            refreshed_at=now,
        )
        session.add(desc)
        await session.flush()
        rows = [
            parsed.new_service(op, description_id=desc.id, client_row_id=client.id)
            for op in parsed.operations
        ]
        session.add_all(rows)
        audit.record(
            session,
            actor=actor,
            action="service-description.add",
            target=f"{client_id} {url}",
            now=now,
            detail={"services": codes},
        )
        return ServiceDescriptionInfo(
            client_id,
            url,
            ServiceDescriptionType.WSDL,
            False,
            "",
            now,
            tuple(_service_info(client_id, r, desc) for r in rows),
        )


async def list_descriptions(
    db: Database, client_id: ClientId
) -> list[ServiceDescriptionInfo]:
    """A client's service descriptions with their services.

    Raises:
        NotFound: code ``ClientNotFound``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        client = await find_client(session, client_id)
        descs = (
            (
                await session.execute(
                    select(ServiceDescription)
                    .where(ServiceDescription.client_id == client.id)
                    .order_by(ServiceDescription.id)
                )
            )
            .scalars()
            .all()
        )
        services = (
            (
                await session.execute(
                    select(Service)
                    .where(Service.client_id == client.id)
                    .order_by(Service.id)
                )
            )
            .scalars()
            .all()
        )
        return [
            ServiceDescriptionInfo(
                client_id,
                d.url,
                ServiceDescriptionType(d.type),
                not d.disabled,
                d.disabled_notice,
                audit.aware(d.refreshed_at),
                tuple(
                    _service_info(client_id, s, d)
                    for s in services
                    if s.description_id == d.id
                ),
            )
            for d in descs
        ]


async def list_services(db: Database, client_id: ClientId) -> list[ServiceInfo]:
    """A client's services, in code order.

    Raises:
        NotFound: code ``ClientNotFound``.
        StorageError: the database failed.
    """
    found = [s for d in await list_descriptions(db, client_id) for s in d.services]
    return sorted(found, key=lambda s: s.service_id.service_code)


async def find_service(
    session: AsyncSession, client_id: ClientId, service_code: str
) -> tuple[Service, ServiceDescription]:
    """A client's service by code, with its description.

    Raises:
        NotFound: code ``ClientNotFound`` or ``ServiceNotFound``.
    """
    client = await find_client(session, client_id)
    row = (
        await session.execute(
            select(Service, ServiceDescription)
            .join(ServiceDescription)
            .where(Service.client_id == client.id, Service.service_code == service_code)
        )
    ).first()
    if row is None:
        raise NotFound(
            f"{client_id} has no service {service_code!r}", code="ServiceNotFound"
        )
    return row[0], row[1]


async def update_service(
    db: Database,
    actor: str,
    client_id: ClientId,
    service_code: str,
    *,
    url: str | None = None,
    timeout_seconds: float | None = None,
    tls_verify: bool | None = None,
    now: dt.datetime,
) -> ServiceInfo:
    """Set a service's address, timeout or TLS verification.

    Raises:
        NotFound: code ``ClientNotFound`` or ``ServiceNotFound``.
        InvalidRequest: a non-HTTP URL or a timeout outside 1-3600 seconds.
        StorageError: the database failed.
    """
    if url is not None:
        _check_url(url)
    if timeout_seconds is not None and not 1 <= timeout_seconds <= 3600:
        raise InvalidRequest("The timeout must be 1-3600 seconds")
    async with db.transaction() as session:
        row, desc = await find_service(session, client_id, service_code)
        changes: dict[str, object] = {}
        if url is not None:
            row.url = changes["url"] = url
        if timeout_seconds is not None:
            row.timeout_seconds = changes["timeout_seconds"] = timeout_seconds
        if tls_verify is not None:
            row.tls_verify = changes["tls_verify"] = tls_verify
        audit.record(
            session,
            actor=actor,
            action="service.update",
            target=f"{client_id} {service_code}",
            now=now,
            detail=changes,
        )
        return _service_info(client_id, row, desc)


async def _find_description(
    session: AsyncSession, client_id: ClientId, url: str
) -> ServiceDescription:
    client = await find_client(session, client_id)
    desc = (
        await session.execute(
            select(ServiceDescription).where(
                ServiceDescription.client_id == client.id, ServiceDescription.url == url
            )
        )
    ).scalar_one_or_none()
    if desc is None:
        raise NotFound(
            f"{client_id} has no service description {url}",
            code="ServiceDescriptionNotFound",
        )
    return desc


async def set_description_enabled(
    db: Database,
    actor: str,
    client_id: ClientId,
    url: str,
    *,
    enabled: bool,
    notice: str = "",
    now: dt.datetime,
) -> None:
    """Enable or disable a description's services (with a notice for callers).

    Raises:
        NotFound: code ``ClientNotFound`` or ``ServiceDescriptionNotFound``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        desc = await _find_description(session, client_id, url)
        desc.disabled = not enabled
        desc.disabled_notice = "" if enabled else notice
        audit.record(
            session,
            actor=actor,
            action="service-description.enable"
            if enabled
            else "service-description.disable",
            target=f"{client_id} {url}",
            now=now,
            detail={"notice": notice} if not enabled else None,
        )


async def delete_description(
    db: Database, actor: str, client_id: ClientId, url: str, *, now: dt.datetime
) -> None:
    """Delete a description, its services and their access rights.

    Raises:
        NotFound: code ``ClientNotFound`` or ``ServiceDescriptionNotFound``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        desc = await _find_description(session, client_id, url)
        codes = (
            (
                await session.execute(
                    select(Service.service_code).where(
                        Service.description_id == desc.id
                    )
                )
            )
            .scalars()
            .all()
        )
        await session.execute(
            delete(AccessRight).where(
                AccessRight.client_id == desc.client_id,
                AccessRight.service_code.in_(codes),
            )
        )
        await session.delete(desc)
        audit.record(
            session,
            actor=actor,
            action="service-description.delete",
            target=f"{client_id} {url}",
            now=now,
            detail={"services": list(codes)},
        )
