"""The service layer: register, validate, list, change and remove services.

The CLI and the admin API both call :class:`Registry`; neither holds logic of
its own. Registering a service proves it works: the SQL passes the static
checks, every ``:name`` has a declared parameter and vice versa, defaults and
samples fit their types, and the statement runs on the real database with the
sample values inside a transaction that is rolled back (the *preview*), which
also yields the result columns and their types.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, InvalidRequest, NotFound, StorageError
from jplink.storage import Database

from .datasources import DataSourcePool, ResolvedSource, async_url
from .definitions import (
    ColumnSpec,
    DataSourceDefinition,
    ParamType,
    ServiceDefinition,
    check_name,
)
from .models import DataSourceRow, ServiceRow
from .portable import (
    EXPORT_FORMAT,
    datasource_from_dict,
    datasource_to_dict,
    parameter_from_dict,
    parameter_to_dict,
    service_from_dict,
    service_to_dict,
)
from .sqltext import check_sql
from .values import bind_parameters, coerce_value
from .vault import PasswordVault

__all__ = ["Catalog", "Registry", "prepare_service"]

log = logging.getLogger(__name__)

#: Preview value per type when a parameter has neither sample nor default.
_SAMPLES = {
    ParamType.STRING: "x",
    ParamType.INTEGER: "1",
    ParamType.DECIMAL: "1",
    ParamType.BOOLEAN: "true",
    ParamType.DATE: "2000-01-01",
    ParamType.DATETIME: "2000-01-01T00:00:00",
}
_PREVIEW_ROWS = 50


@dataclass(frozen=True, slots=True)
class Catalog:
    """A snapshot of the enabled services and their data sources (runtime)."""

    services: Mapping[str, ServiceDefinition]
    sources: Mapping[str, ResolvedSource]


# PostgreSQL type OIDs (pg_type.dat), as asyncpg reports them in the
# cursor description: lets a preview without rows still type its columns.
_PG_OIDS = {
    16: ParamType.BOOLEAN,
    20: ParamType.INTEGER,
    21: ParamType.INTEGER,
    23: ParamType.INTEGER,
    700: ParamType.DECIMAL,
    701: ParamType.DECIMAL,
    1700: ParamType.DECIMAL,
    1082: ParamType.DATE,
    1114: ParamType.DATETIME,
    1184: ParamType.DATETIME,
}


def _infer_type(values: list[object], type_code: object) -> ParamType:
    sample = next((v for v in values if v is not None), None)
    if sample is None and isinstance(type_code, int):
        return _PG_OIDS.get(type_code, ParamType.STRING)
    if isinstance(sample, bool):
        return ParamType.BOOLEAN
    if isinstance(sample, int):
        return ParamType.INTEGER
    if isinstance(sample, float | Decimal):
        return ParamType.DECIMAL
    if isinstance(sample, dt.datetime):
        return ParamType.DATETIME
    if isinstance(sample, dt.date):
        return ParamType.DATE
    return ParamType.STRING


async def prepare_service(
    service: ServiceDefinition, source: ResolvedSource, pool: DataSourcePool
) -> ServiceDefinition:
    """Validate a service and run its preview; return it with its columns.

    Args:
        service: the definition as submitted.
        source: its data source.
        pool: where the preview runs (rolled back, nothing is changed).

    Returns:
        The definition with normalised SQL and typed result columns.

    Raises:
        InvalidRequest: ``InvalidSql``, ``ParameterMismatch``,
            ``InvalidParameter``, ``InvalidName``, ``ColumnMismatch`` or
            ``PreviewFailed``, each saying what to fix.
    """
    checked = check_sql(service.sql, read_only=service.read_only)
    declared = {p.name for p in service.parameters}
    used = set(checked.placeholders)
    if used != declared:
        parts = []
        if used - declared:
            parts.append(f"undeclared in SQL: {', '.join(sorted(used - declared))}")
        if declared - used:
            parts.append(f"declared but unused: {', '.join(sorted(declared - used))}")
        raise InvalidRequest(
            f"Parameters and :placeholders differ ({'; '.join(parts)})",
            code="ParameterMismatch",
        )
    samples: dict[str, object] = {}
    for p in service.parameters:
        if p.default is not None:
            coerce_value(p, p.default)
        if p.sample is not None:
            coerce_value(p, p.sample)
        samples[p.name] = p.sample or p.default or _SAMPLES[p.type]
    values = bind_parameters(service, samples)
    try:
        page = await pool.run(
            source,
            checked.sql,
            values,
            read_only=service.read_only,
            limit=_PREVIEW_ROWS,
            paged=service.read_only,
            commit=False,
        )
    except StorageError as exc:
        cause = exc.__cause__
        why = str(getattr(cause, "orig", None) or exc.message).splitlines()[0]
        # The operator registering the service may see the database's text.
        raise InvalidRequest(
            f"The SQL did not run on data source {source.definition.name!r} with the "
            f"sample parameters: {why}",
            code="PreviewFailed",
        ) from exc
    for name in page.columns:
        check_name(name, "Result column (alias it with AS)")
    if service.columns:
        if tuple(c.name for c in service.columns) != page.columns:
            raise InvalidRequest(
                f"Declared columns {[c.name for c in service.columns]} differ from "
                f"the statement's result columns {list(page.columns)}",
                code="ColumnMismatch",
            )
        columns = service.columns
    else:
        codes = page.type_codes or (None,) * len(page.columns)
        columns = tuple(
            ColumnSpec(name, _infer_type([row[i] for row in page.rows], codes[i]))
            for i, name in enumerate(page.columns)
        )
    return dataclasses.replace(service, sql=checked.sql, columns=columns)


def _to_definition(row: ServiceRow, source_name: str) -> ServiceDefinition:
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


def _ds_definition(row: DataSourceRow) -> DataSourceDefinition:
    return DataSourceDefinition(
        name=row.name,
        url=row.url,
        pool_size=row.pool_size,
        connect_timeout=row.connect_timeout,
        query_timeout=row.query_timeout,
    )


class Registry:
    """Data sources and services in the adapter's store.

    Args:
        db: the adapter's store.
        vault: encrypts data-source passwords.
        pool: runs previews and connection tests.
    """

    def __init__(
        self, db: Database, vault: PasswordVault, pool: DataSourcePool
    ) -> None:
        self._db = db
        self._vault = vault
        self._pool = pool

    # -- data sources -----------------------------------------------------

    async def save_datasource(
        self, source: DataSourceDefinition, password: str | None = None
    ) -> DataSourceDefinition:
        """Create or replace a data source; a password in the URL is moved out.

        Args:
            source: the definition.
            password: the new password; ``None`` keeps a stored one.

        Returns:
            The stored definition (its URL never holds a password).

        Raises:
            InvalidRequest: an unparsable URL.
        """
        url = async_url(source.url)
        if url.password is not None:
            password = password if password is not None else str(url.password)
        # URL.set(password=None) means "unchanged"; the namedtuple's _replace
        # really drops it.
        clean = make_url(source.url)._replace(password=None)
        source = dataclasses.replace(
            source, url=clean.render_as_string(hide_password=False)
        )
        async with self._db.transaction() as s:
            row = await s.scalar(
                select(DataSourceRow).where(DataSourceRow.name == source.name)
            )
            if row is None:
                row = DataSourceRow(name=source.name)
                s.add(row)
            row.url = source.url
            row.pool_size = source.pool_size
            row.connect_timeout = source.connect_timeout
            row.query_timeout = source.query_timeout
            if password is not None:
                row.password_token = self._vault.encrypt(password)
        await self._pool.forget(source.name)
        log.info("data source %s saved", source.name)
        return source

    async def list_datasources(self) -> tuple[DataSourceDefinition, ...]:
        """Every data source, by name."""
        async with self._db.transaction() as s:
            rows = await s.scalars(select(DataSourceRow).order_by(DataSourceRow.name))
            return tuple(_ds_definition(r) for r in rows)

    async def _ds_row(self, s: AsyncSession, name: str) -> DataSourceRow:
        row = await s.scalar(select(DataSourceRow).where(DataSourceRow.name == name))
        if row is None:
            raise NotFound(f"No data source named {name!r}")
        return row

    async def resolve(self, name: str) -> ResolvedSource:
        """A data source with its decrypted password.

        Raises:
            NotFound: no such data source.
            StorageError: ``SecretUnreadable`` (another key file).
        """
        async with self._db.transaction() as s:
            row = await self._ds_row(s, name)
            token = row.password_token
            definition = _ds_definition(row)
        password = None if token is None else self._vault.decrypt(token)
        return ResolvedSource(definition, password)

    async def test_datasource(self, name: str) -> None:
        """Connect to a data source and run ``SELECT 1``.

        Raises:
            NotFound: no such data source.
            StorageError: ``DatabaseUnavailable``.
        """
        await self._pool.test(await self.resolve(name))

    async def delete_datasource(self, name: str) -> None:
        """Remove a data source that no service uses.

        Raises:
            NotFound: no such data source.
            Conflict: services still use it.
        """
        async with self._db.transaction() as s:
            row = await self._ds_row(s, name)
            users = list(
                await s.scalars(
                    select(ServiceRow.code).where(ServiceRow.datasource_id == row.id)
                )
            )
            if users:
                raise Conflict(
                    f"Data source {name!r} is used by {', '.join(users)}; delete or "
                    "move those services first"
                )
            await s.delete(row)
        await self._pool.forget(name)
        log.info("data source %s deleted", name)

    # -- services ---------------------------------------------------------

    async def preview(self, service: ServiceDefinition) -> ServiceDefinition:
        """Validate and preview a service without storing it.

        Returns:
            The definition as :meth:`register` would store it.

        Raises:
            InvalidRequest: validation or preview failed.
            NotFound: unknown data source.
        """
        return await prepare_service(
            service, await self.resolve(service.datasource), self._pool
        )

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
        prepared = await prepare_service(
            service, await self.resolve(service.datasource), self._pool
        )
        try:
            async with self._db.transaction() as s:
                ds = await self._ds_row(s, prepared.datasource)
                row = await s.scalar(
                    select(ServiceRow).where(ServiceRow.code == prepared.code)
                )
                if row is not None and not replace:
                    raise Conflict(
                        f"Service {prepared.code!r} exists; use update to change it"
                    )
                if row is None and replace:
                    raise NotFound(f"No service with code {prepared.code!r}")
                if row is None:
                    row = ServiceRow(code=prepared.code)
                    s.add(row)
                self._fill(row, prepared, ds.id)
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise Conflict(f"Service {prepared.code!r} exists") from exc
            raise
        log.info("service %s %s", prepared.code, "updated" if replace else "registered")
        return prepared

    @staticmethod
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

    async def list_services(
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
            return tuple(_to_definition(row, name) for row, name in result.all())

    async def get(self, code: str) -> ServiceDefinition:
        """One service.

        Raises:
            NotFound: no such service.
        """
        for service in await self.list_services():
            if service.code == code:
                return service
        raise NotFound(f"No service with code {code!r}")

    async def set_enabled(self, code: str, enabled: bool) -> None:
        """Enable or disable a service (a disabled one answers ``ServiceDisabled``).

        Raises:
            NotFound: no such service.
        """
        async with self._db.transaction() as s:
            row = await s.scalar(select(ServiceRow).where(ServiceRow.code == code))
            if row is None:
                raise NotFound(f"No service with code {code!r}")
            row.enabled = enabled
        log.info("service %s %s", code, "enabled" if enabled else "disabled")

    async def delete(self, code: str) -> None:
        """Remove a service.

        Raises:
            NotFound: no such service.
        """
        async with self._db.transaction() as s:
            row = await s.scalar(select(ServiceRow).where(ServiceRow.code == code))
            if row is None:
                raise NotFound(f"No service with code {code!r}")
            await s.delete(row)
        log.info("service %s deleted", code)

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
        """Create or update the data sources and services of an export.

        Each service is validated and previewed like a new registration;
        the first failure stops the import (earlier items stay imported).

        Returns:
            The codes of the services imported.

        Raises:
            InvalidRequest: a malformed item, naming it.
        """
        for i, item in enumerate(document.get("datasources", [])):
            source, password = datasource_from_dict(item, f"datasources[{i}]")
            await self.save_datasource(source, password)
        codes = []
        existing = {s.code for s in await self.list_services()}
        for i, item in enumerate(document.get("services", [])):
            service = service_from_dict(item, f"services[{i}]")
            await self.register(service, replace=service.code in existing)
            codes.append(service.code)
        return codes
