"""Proving a service works before it is stored: static checks and a preview.

Registering a service proves it works: the SQL passes the static checks, every
``:name`` has a declared parameter and vice versa, defaults and samples fit
their types, and the statement runs on the real database with the sample
values inside a transaction that is rolled back (the *preview*), which also
yields the result columns and their types.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from jplink.errors import InvalidRequest, StorageError

from .datasources import DataSourcePool, ResolvedSource
from .definitions import ColumnSpec, ParamType, ServiceDefinition, check_name
from .sqltext import check_sql
from .values import bind_parameters, coerce_value

__all__ = ["prepare_service"]

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
