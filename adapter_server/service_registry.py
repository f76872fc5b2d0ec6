"""Registered services in the adapter's store: register, list, change, remove.

A service is stored only after :func:`~adapter_server.preview.prepare_service`
has proved it runs on its data source. Each change is audit-logged in its own
transaction.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, NotFound, StorageError
from jplink.storage import Database

from .audit import AuditLog
from .datasource_registry import DataSourceRegistry
from .datasources import DataSourcePool
from .definitions import ColumnSpec, ParamType, ServiceDefinition
from .models import DataSourceRow, ServiceRow
from .portable import parameter_from_dict, parameter_to_dict
from .preview import prepare_service

__all__ = ["ServiceRegistry"]

log = logging.getLogger(__name__)


def _definition(row: ServiceRow, source_name: str) -> ServiceDefinition:
    return ServiceDefinition(
        code=row.code,
        version=row.version,
        subsystem=row.subsystem,
        title=row.title,
        notes=row.notes,
        datasource=source_name,
        sql=row.sql,
        parameters=tuple(parameter_from_dict(p) for p in row.parameters),
        columns=tuple(ColumnSpec(c["name"], ParamType(c["type"])) for c in row.columns),
        max_rows=row.max_rows,
        read_only=row.read_only,
        enabled=row.enabled,
    )


def _fill(row: ServiceRow, d: ServiceDefinition, datasource_id: int) -> None:
    row.version = d.version
    row.subsystem = d.subsystem
    row.title = d.title
    row.notes = d.notes
    row.datasource_id = datasource_id
    row.sql = d.sql
    row.parameters = [parameter_to_dict(p) for p in d.parameters]
    row.columns = [{"name": c.name, "type": c.type.value} for c in d.columns]
    row.max_rows = d.max_rows
    row.read_only = d.read_only
    row.enabled = d.enabled


class ServiceRegistry:
    """The registered services of the adapter's store.

    Args:
        db: the adapter's store.
        sources: the data sources the services run on.
        pool: runs previews.
        audit: records each change in the change's transaction.
    """

    def __init__(
        self,
        db: Database,
        sources: DataSourceRegistry,
        pool: DataSourcePool,
        audit: AuditLog,
    ) -> None:
        self._db = db
        self._sources = sources
        self._pool = pool
        self._audit = audit

    async def preview(self, service: ServiceDefinition) -> ServiceDefinition:
        """Validate and preview a service without storing it.

        Returns:
            The definition as :meth:`register` would store it.

        Raises:
            InvalidRequest: validation or preview failed.
            NotFound: unknown data source.
        """
        source = await self._sources.resolve(service.datasource)
        return await prepare_service(service, source, self._pool)

    async def store(
        self, s: AsyncSession, prepared: ServiceDefinition, *, replace: bool | None
    ) -> None:
        """Write a prepared service in transaction ``s``.

        Args:
            s: the transaction.
            prepared: the output of :func:`prepare_service`.
            replace: ``True`` updates an existing service, ``False`` creates a
                new one, ``None`` does whichever applies (import).

        Raises:
            NotFound: unknown data source, or ``replace`` of a missing service.
            Conflict: the code exists and ``replace`` is false.
        """
        ds = await self._sources.row(s, prepared.datasource)
        row = await s.scalar(select(ServiceRow).where(ServiceRow.code == prepared.code))
        if row is not None and replace is False:
            raise Conflict(f"Service {prepared.code!r} exists; use update to change it")
        if row is None and replace is True:
            raise NotFound(f"No service with code {prepared.code!r}")
        if row is None:
            row = ServiceRow(code=prepared.code)
            s.add(row)
        _fill(row, prepared, ds.id)

    async def register(
        self, service: ServiceDefinition, *, replace: bool = False
    ) -> ServiceDefinition:
        """Validate, preview and store a service.

        Args:
            service: the definition.
            replace: update an existing service of the same code (else a
                duplicate code is a :class:`Conflict`).

        Returns:
            The stored definition with its result columns.

        Raises:
            InvalidRequest: validation or preview failed (see
                :func:`prepare_service`).
            NotFound: unknown data source, or ``replace`` of a missing service.
            Conflict: the code exists and ``replace`` is false.
        """
        prepared = await self.preview(service)
        action = "service.update" if replace else "service.register"
        try:
            async with self._db.transaction() as s:
                await self.store(s, prepared, replace=replace)
                self._audit.record(
                    s,
                    action,
                    prepared.code,
                    {"version": prepared.version, "datasource": prepared.datasource},
                )
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise Conflict(f"Service {prepared.code!r} exists") from exc
            raise
        log.info("service %s %s", prepared.code, "updated" if replace else "registered")
        return prepared

    async def list_all(
        self, subsystem: str | None = None
    ) -> tuple[ServiceDefinition, ...]:
        """The services (of one subsystem, if given), by code."""
        query = (
            select(ServiceRow, DataSourceRow.name)
            .join(DataSourceRow, ServiceRow.datasource_id == DataSourceRow.id)
            .order_by(ServiceRow.code)
        )
        if subsystem is not None:
            query = query.where(ServiceRow.subsystem == subsystem)
        async with self._db.transaction() as s:
            result = await s.execute(query)
            return tuple(_definition(row, name) for row, name in result.all())

    async def get(self, code: str) -> ServiceDefinition:
        """One service.

        Raises:
            NotFound: no such service.
        """
        for service in await self.list_all():
            if service.code == code:
                return service
        raise NotFound(f"No service with code {code!r}")

    async def _row(self, s: AsyncSession, code: str) -> ServiceRow:
        row = await s.scalar(select(ServiceRow).where(ServiceRow.code == code))
        if row is None:
            raise NotFound(f"No service with code {code!r}")
        return row

    async def set_enabled(self, code: str, enabled: bool) -> None:
        """Enable or disable a service (a disabled one answers ``ServiceDisabled``).

        Raises:
            NotFound: no such service.
        """
        async with self._db.transaction() as s:
            row = await self._row(s, code)
            row.enabled = enabled
            self._audit.record(
                s, "service.enable" if enabled else "service.disable", code
            )
        log.info("service %s %s", code, "enabled" if enabled else "disabled")

    async def delete(self, code: str) -> None:
        """Remove a service.

        Raises:
            NotFound: no such service.
        """
        async with self._db.transaction() as s:
            await s.delete(await self._row(s, code))
            self._audit.record(s, "service.delete", code)
        log.info("service %s deleted", code)
