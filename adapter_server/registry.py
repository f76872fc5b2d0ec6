"""The service layer: one :class:`Registry` over data sources and services.

The CLI and the admin API both call :class:`Registry`; neither holds logic of
its own. It joins the data-source registry
(:mod:`adapter_server.datasource_registry`), the service registry
(:mod:`adapter_server.service_registry`) and the audit log
(:mod:`adapter_server.audit`), and adds what spans them: the runtime
catalogue and the export/import of whole documents. Every change is recorded
under the registry's actor (``cli``, or ``apikey:<id>`` via :meth:`acting_as`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jplink.errors import InvalidRequest, NotFound
from jplink.storage import Database

from .audit import AuditLog, Clock, utcnow
from .datasource_registry import DataSourceRegistry, without_password
from .datasources import DataSourcePool, ResolvedSource
from .definitions import DataSourceDefinition, ServiceDefinition
from .portable import (
    EXPORT_FORMAT,
    datasource_from_dict,
    datasource_to_dict,
    service_from_dict,
    service_to_dict,
)
from .preview import prepare_service
from .service_registry import ServiceRegistry
from .vault import PasswordVault

__all__ = ["Catalog", "Registry", "prepare_service"]


@dataclass(frozen=True, slots=True)
class Catalog:
    """A snapshot of the enabled services and their data sources (runtime)."""

    services: Mapping[str, ServiceDefinition]
    sources: Mapping[str, ResolvedSource]


def _items(document: Mapping[str, Any], key: str) -> Sequence[Any]:
    items = document.get(key, [])
    if not isinstance(items, list):
        raise InvalidRequest(f"{key}: expected a list")
    return items


class Registry:
    """Data sources, services and the audit log of the adapter's store.

    Args:
        db: the adapter's store.
        vault: encrypts data-source passwords.
        pool: runs previews and connection tests.
        actor: who the changes made through this registry are recorded as
            (``cli``, ``system`` or ``apikey:<key id>``).
        clock: the time source of audit entries.
    """

    def __init__(
        self,
        db: Database,
        vault: PasswordVault,
        pool: DataSourcePool,
        *,
        actor: str,
        clock: Clock = utcnow,
    ) -> None:
        self._db = db
        self._vault = vault
        self._pool = pool
        self._clock = clock
        #: The audit log, writing as this registry's actor.
        self.audit = AuditLog(db, actor, clock)
        self.datasources = DataSourceRegistry(db, vault, pool, self.audit)
        self.services = ServiceRegistry(db, self.datasources, pool, self.audit)

    def acting_as(self, actor: str) -> Registry:
        """The same store, recording changes as made by ``actor``."""
        return Registry(
            self._db, self._vault, self._pool, actor=actor, clock=self._clock
        )

    # -- data sources (see DataSourceRegistry) ----------------------------

    async def save_datasource(
        self, source: DataSourceDefinition, password: str | None = None
    ) -> DataSourceDefinition:
        """Create or replace a data source (:meth:`DataSourceRegistry.save`)."""
        return await self.datasources.save(source, password)

    async def list_datasources(self) -> tuple[DataSourceDefinition, ...]:
        """Every data source, by name."""
        return await self.datasources.list_all()

    async def resolve(self, name: str) -> ResolvedSource:
        """A data source with its password (:meth:`DataSourceRegistry.resolve`)."""
        return await self.datasources.resolve(name)

    async def test_datasource(self, name: str) -> None:
        """Connect and run ``SELECT 1`` (:meth:`DataSourceRegistry.test`)."""
        await self.datasources.test(name)

    async def delete_datasource(self, name: str) -> None:
        """Remove an unused data source (:meth:`DataSourceRegistry.delete`)."""
        await self.datasources.delete(name)

    # -- services (see ServiceRegistry) -----------------------------------

    async def preview(self, service: ServiceDefinition) -> ServiceDefinition:
        """Validate and preview, store nothing (:meth:`ServiceRegistry.preview`)."""
        return await self.services.preview(service)

    async def register(
        self, service: ServiceDefinition, *, replace: bool = False
    ) -> ServiceDefinition:
        """Validate, preview and store (:meth:`ServiceRegistry.register`)."""
        return await self.services.register(service, replace=replace)

    async def list_services(
        self, subsystem: str | None = None
    ) -> tuple[ServiceDefinition, ...]:
        """The services (of one subsystem, if given), by code."""
        return await self.services.list_all(subsystem)

    async def get(self, code: str) -> ServiceDefinition:
        """One service (:meth:`ServiceRegistry.get`)."""
        return await self.services.get(code)

    async def set_enabled(self, code: str, enabled: bool) -> None:
        """Enable or disable a service (:meth:`ServiceRegistry.set_enabled`)."""
        await self.services.set_enabled(code, enabled)

    async def delete(self, code: str) -> None:
        """Remove a service (:meth:`ServiceRegistry.delete`)."""
        await self.services.delete(code)

    # -- across both ------------------------------------------------------

    async def catalog(self) -> Catalog:
        """A snapshot of all services and their resolved data sources.

        Raises:
            StorageError: the store failed or a password cannot be decrypted.
        """
        services = await self.list_services()
        names = {s.datasource for s in services}
        sources = {name: await self.resolve(name) for name in sorted(names)}
        return Catalog({s.code: s for s in services}, sources)

    async def export_document(self) -> dict[str, Any]:
        """Every data source (without passwords) and service, for a file."""
        return {
            "format": EXPORT_FORMAT,
            "datasources": [
                datasource_to_dict(d) for d in await self.list_datasources()
            ],
            "services": [service_to_dict(s) for s in await self.list_services()],
        }

    async def import_document(self, document: Mapping[str, Any]) -> list[str]:
        """Create or update the data sources and services of an export, all or none.

        Every item is parsed, and every service validated and previewed
        against the data source it will have after the import, before
        anything is written; then everything is written in one transaction
        with one audit entry. The first failure names its item and leaves the
        store as it was.

        Returns:
            The codes of the services imported.

        Raises:
            InvalidRequest: a malformed item or a service that fails
                validation or preview, naming it.
            NotFound: a service's data source is neither in the document nor
                stored.
        """
        incoming: dict[str, tuple[DataSourceDefinition, str | None]] = {}
        for i, item in enumerate(_items(document, "datasources")):
            cleaned = without_password(*datasource_from_dict(item, f"datasources[{i}]"))
            incoming[cleaned[0].name] = cleaned
        services = [
            service_from_dict(item, f"services[{i}]")
            for i, item in enumerate(_items(document, "services"))
        ]
        try:
            prepared = await self._prepare_all(incoming, services)
            async with self._db.transaction() as s:
                for definition, password in incoming.values():
                    await self.datasources.store(s, definition, password)
                await s.flush()
                for service in prepared:
                    await self.services.store(s, service, replace=None)
                self.audit.record(
                    s,
                    "import",
                    f"{len(incoming)} data source(s), {len(prepared)} service(s)",
                    {
                        "datasources": sorted(incoming),
                        "services": [p.code for p in prepared],
                    },
                )
        finally:
            # Previews may have opened engines for the incoming definitions.
            for name in incoming:
                await self._pool.forget(name)
        return [p.code for p in prepared]

    async def _prepare_all(
        self,
        incoming: Mapping[str, tuple[DataSourceDefinition, str | None]],
        services: Sequence[ServiceDefinition],
    ) -> list[ServiceDefinition]:
        resolved: dict[str, ResolvedSource] = {}
        async with self._db.transaction() as s:
            for name, (definition, password) in incoming.items():
                resolved[name] = await self.datasources.candidate(
                    s, definition, password
                )
        prepared = []
        for i, service in enumerate(services):
            where = f"services[{i}] ({service.code})"
            try:
                source = resolved.get(service.datasource) or await self.resolve(
                    service.datasource
                )
                prepared.append(await prepare_service(service, source, self._pool))
            except (InvalidRequest, NotFound) as exc:
                raise type(exc)(
                    f"{where}: {exc.message}", code=exc.code, detail=exc.detail
                ) from exc
        return prepared
