"""Server configuration as the proxies see it: clients, services, access rights.

The proxies ask the same few questions for every message: is this a
registered client of ours, which address serves this service, and may this
client call it. :class:`ServerConfView` answers them from an in-memory
snapshot of the tables, read in one transaction and kept for
``cache_seconds`` (X-Road caches its server configuration the same way,
``proxy.server-conf-cache-period``); 0 reads the database for every message.

Every check returns a frozen result or raises (fail closed).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from jplink.errors import AccessDenied, NotFound
from jplink.identifiers import ClientId, GlobalGroupId, LocalGroupId, ServiceId
from jplink.storage import Database

from .models import (
    AccessRight,
    Client,
    LocalGroup,
    LocalGroupMember,
    Service,
    ServiceDescription,
)
from .single_flight import SingleFlight
from .states import ClientState

__all__ = ["ServerConfView", "ServiceTarget", "Snapshot"]


@dataclass(frozen=True, slots=True)
class ServiceTarget:
    """A service a client may call now, and where it lives."""

    service: ServiceId
    url: str
    timeout_seconds: float
    tls_verify: bool


@dataclass(frozen=True, slots=True)
class _ServiceRow:
    url: str
    timeout_seconds: float
    tls_verify: bool
    disabled: bool
    notice: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The server configuration at one moment (client ids in text form)."""

    client_states: dict[str, str]
    services: dict[tuple[str, str], _ServiceRow]
    rights: dict[tuple[str, str], frozenset[str]]
    local_groups: dict[tuple[str, str], frozenset[str]]


async def load_snapshot(db: Database) -> Snapshot:
    """Read the tables the proxies need, in one transaction.

    Raises:
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        clients = {c.id: c for c in (await session.execute(select(Client))).scalars()}
        services: dict[tuple[str, str], _ServiceRow] = {}
        for svc, desc in await session.execute(
            select(Service, ServiceDescription).join(ServiceDescription)
        ):
            services[(clients[svc.client_id].identifier, svc.service_code)] = (
                _ServiceRow(
                    svc.url,
                    svc.timeout_seconds,
                    svc.tls_verify,
                    desc.disabled,
                    desc.disabled_notice,
                )
            )
        rights: dict[tuple[str, str], set[str]] = {}
        for right in (await session.execute(select(AccessRight))).scalars():
            key = (clients[right.client_id].identifier, right.service_code)
            rights.setdefault(key, set()).add(right.subject)
        groups: dict[tuple[str, str], set[str]] = {}
        for group, member in await session.execute(
            select(LocalGroup, LocalGroupMember).join(
                LocalGroupMember, LocalGroupMember.group_id == LocalGroup.id
            )
        ):
            key = (clients[group.client_id].identifier, group.code)
            groups.setdefault(key, set()).add(member.member)
    return Snapshot(
        client_states={c.identifier: c.state for c in clients.values()},
        services=services,
        rights={k: frozenset(v) for k, v in rights.items()},
        local_groups={k: frozenset(v) for k, v in groups.items()},
    )


class ServerConfView:
    """Cached answers to the proxies' questions about this server's clients.

    Args:
        db: the security server's database.
        cache_seconds: how long a snapshot is used; 0 re-reads every time.
    """

    def __init__(self, db: Database, *, cache_seconds: float = 5.0) -> None:
        self._db = db
        self._ttl = cache_seconds
        self._snapshot: Snapshot | None = None
        self._loaded_at = 0.0
        self._loads: SingleFlight[Snapshot] = SingleFlight()
        self._generation = 0

    async def snapshot(self) -> Snapshot:
        """The current snapshot (re-read when older than the cache period)."""
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - self._loaded_at < self._ttl:
            return snapshot
        if self._ttl <= 0:  # every message reads the tables itself
            return await load_snapshot(self._db)
        return await self._loads.run(None, self._reload)

    async def _reload(self) -> Snapshot:
        # Concurrent callers share this one read (SingleFlight).
        started, generation = time.monotonic(), self._generation
        snapshot = await load_snapshot(self._db)
        if generation == self._generation:  # not invalidated meanwhile
            self._snapshot, self._loaded_at = snapshot, started
        return snapshot

    def invalidate(self) -> None:
        """Forget the snapshot (after a configuration change)."""
        self._snapshot = None
        self._generation += 1
        self._loads = SingleFlight()  # a read started before this is not joined

    async def check_registered_client(self, client: ClientId, *, role: str) -> ClientId:
        """Check that ``client`` is a registered client of this server.

        PROTOCOLS.md §7.1 step 3 / §7.2 step 3: the client (or the provider)
        "must be a local client with status REGISTERED".

        Args:
            client: the member or subsystem.
            role: ``client`` or ``provider``, for the message.

        Returns:
            ``client``, checked.

        Raises:
            NotFound: code ``UnknownMember``.
        """
        state = (await self.snapshot()).client_states.get(str(client))
        if state != ClientState.REGISTERED.value:
            raise NotFound(
                f"{role.capitalize()} '{client}' not found on this security server",
                code="UnknownMember",
                detail={"state": state},
            )
        return client

    async def check_access(
        self,
        service: ServiceId,
        client: ClientId,
        *,
        global_groups: Iterable[GlobalGroupId],
    ) -> ServiceTarget:
        """Decide whether ``client`` may call ``service`` now.

        PROTOCOLS.md §7.2 step 6, in X-Road's order: the service exists
        (``UnknownService``); ``isQueryAllowed`` on the service code, the
        version ignored, against rights naming the client, its member, one of
        the provider's local groups or a global group (``AccessDenied``); the
        service is enabled (``ServiceDisabled``).

        Args:
            service: the requested service.
            client: the SOAP ``client``.
            global_groups: the global groups ``client`` belongs to.

        Returns:
            Where to call the service.

        Raises:
            NotFound: code ``UnknownService``.
            AccessDenied: code ``AccessDenied``.
            SecurityError: code ``ServiceDisabled``.
        """
        snap = await self.snapshot()
        provider = str(service.client)
        row = snap.services.get((provider, service.service_code))
        if row is None:
            raise NotFound(f"Unknown service: {service}", code="UnknownService")
        subjects = snap.rights.get((provider, service.service_code), frozenset())
        candidates = {str(client), *(str(g) for g in global_groups)}
        allowed = bool(candidates & subjects)
        for subject in subjects:
            if allowed:
                break
            if subject.startswith("LOCALGROUP:"):
                code = LocalGroupId(subject.split(":", 1)[1]).group_code
                members = snap.local_groups.get((provider, code), frozenset())
                allowed = str(client) in members
        if not allowed:
            raise AccessDenied(
                f"Request not allowed: {client} has no access right to {service}"
            )
        if row.disabled:
            raise AccessDenied(
                f"Service {service} is disabled: {row.notice}".rstrip(": "),
                code="ServiceDisabled",
            )
        return ServiceTarget(service, row.url, row.timeout_seconds, row.tls_verify)
