"""Refreshing a WSDL service description, and what changed.

X-Road's refresh downloads the description again and shows the operator
which services were added, removed or changed before they are used. The
difference is computed by the pure :func:`diff_services`;
:func:`refresh_wsdl_description` applies it in one transaction:

- added operations become services (addressed at the WSDL's
  ``soap:address``, default timeout, TLS verification on);
- removed ones are deleted together with their access rights (as X-Road
  does: a right to a service that no longer exists must not come back when
  a service of the same code reappears);
- changed ones (version or title) are updated; every service keeps the
  address, timeout and TLS setting the operator gave it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select

from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.identifiers import ClientId
from jplink.storage import Database

from .. import audit
from ..clients import find_client
from ..models import AccessRight, Service, ServiceDescription
from ..services import parse_wsdl_services
from ..states import ServiceDescriptionType

__all__ = [
    "RefreshResult",
    "ServiceChange",
    "diff_services",
    "refresh_wsdl_description",
]


@dataclass(frozen=True, slots=True)
class ServiceChange:
    """A service whose version or title changed."""

    service_code: str
    old_version: str | None
    new_version: str | None
    old_title: str | None
    new_title: str | None


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What a refresh changed, by service code (each tuple sorted)."""

    client_id: ClientId
    url: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[ServiceChange, ...]
    refreshed_at: dt.datetime


#: A service's (version, title), keyed by code.
Facts = Mapping[str, tuple[str | None, str | None]]


def diff_services(
    old: Facts, new: Facts
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[ServiceChange, ...]]:
    """Compare the stored services with the new document's operations.

    Args:
        old: the stored services' facts.
        new: the refreshed document's operations' facts.

    Returns:
        ``(added, removed, changed)``, each sorted by service code.
    """
    added = tuple(sorted(set(new) - set(old)))
    removed = tuple(sorted(set(old) - set(new)))
    changed = tuple(
        ServiceChange(code, old[code][0], new[code][0], old[code][1], new[code][1])
        for code in sorted(set(old) & set(new))
        if old[code] != new[code]
    )
    return added, removed, changed


async def refresh_wsdl_description(
    db: Database,
    actor: str,
    client_id: ClientId,
    url: str,
    *,
    wsdl: bytes,
    now: dt.datetime,
) -> RefreshResult:
    """Apply a re-downloaded WSDL to a description, all or nothing.

    Args:
        db: the server's database.
        actor: who (audit log).
        client_id: the providing client.
        url: the description's URL (as it was added).
        wsdl: the document as downloaded again (untrusted).
        now: when.

    Returns:
        What was added, removed and changed.

    Raises:
        XmlSecurityError, MalformedMessage: not a usable WSDL.
        InvalidRequest: a WSDL without operations, or the description is not
            a WSDL one.
        NotFound: code ``ClientNotFound`` or ``ServiceDescriptionNotFound``.
        Conflict: code ``ServiceExists`` when an added code is used by another
            description of the client.
        StorageError: the database failed.
    """
    parsed = parse_wsdl_services(wsdl, url)
    operations = {op.name: op for op in parsed.operations}
    new = {code: (op.version, op.title) for code, op in operations.items()}
    async with db.transaction() as session:
        client = await find_client(session, client_id)
        desc = (
            await session.execute(
                select(ServiceDescription).where(
                    ServiceDescription.client_id == client.id,
                    ServiceDescription.url == url,
                )
            )
        ).scalar_one_or_none()
        if desc is None:
            raise NotFound(
                f"{client_id} has no service description {url}",
                code="ServiceDescriptionNotFound",
            )
        if desc.type != ServiceDescriptionType.WSDL.value:
            raise InvalidRequest(f"{url} is not a WSDL service description")
        rows = {
            r.service_code: r
            for r in (
                await session.execute(
                    select(Service).where(Service.description_id == desc.id)
                )
            ).scalars()
        }
        old = {code: (r.service_version, r.title) for code, r in rows.items()}
        added, removed, changed = diff_services(old, new)
        if added:
            taken = (
                await session.execute(
                    select(Service.service_code).where(
                        Service.client_id == client.id,
                        Service.service_code.in_(added),
                    )
                )
            ).scalars()
            clash = sorted(taken)
            if clash:
                raise Conflict(
                    f"{client_id} already has service(s) {', '.join(clash)} "
                    "in another description",
                    code="ServiceExists",
                )
        if removed:
            await session.execute(
                delete(AccessRight).where(
                    AccessRight.client_id == client.id,
                    AccessRight.service_code.in_(removed),
                )
            )
            for code in removed:
                await session.delete(rows[code])
        for change in changed:
            row = rows[change.service_code]
            row.service_version, row.title = change.new_version, change.new_title
        session.add_all(
            parsed.new_service(
                operations[code], description_id=desc.id, client_row_id=client.id
            )
            for code in added
        )
        desc.refreshed_at = now
        audit.record(
            session,
            actor=actor,
            action="service-description.refresh",
            target=f"{client_id} {url}",
            now=now,
            detail={
                "added": list(added),
                "removed": list(removed),
                "changed": [c.service_code for c in changed],
            },
        )
    return RefreshResult(client_id, url, added, removed, changed, now)
