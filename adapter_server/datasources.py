"""Running statements on the operator's databases: engines, limits, errors.

This is the adapter's I/O seam toward data sources. One async engine per data
source is built on first use (never at import) and kept until the source
changes or the app stops. Every database error is translated here, exactly
once, into a :class:`~jplink.errors.StorageError` whose code says what the
caller can do (``DatabaseUnavailable``, ``QueryTimeout``, ``QueryFailed``) and
whose message never carries the database's own text, which can leak schema or
values; that text goes to the debug log only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import URL, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from jplink.errors import InvalidRequest, StorageError

from ._sqlite import ConnectFailed, QueryInterrupted, SqliteRunner, fetch_page
from .definitions import DataSourceDefinition

__all__ = ["DataSourcePool", "QueryResult", "ResolvedSource", "async_url"]

log = logging.getLogger(__name__)

# The async driver SQLAlchemy should use for a URL given without one.
_ASYNC_DRIVERS = {
    "sqlite": "aiosqlite",
    "postgresql": "asyncpg",
    "mysql": "aiomysql",
    "mariadb": "aiomysql",
    "mssql": "aioodbc",
    "oracle": "oracledb_async",
}
_PG_QUERY_CANCELED = "57014"


@dataclass(frozen=True, slots=True)
class ResolvedSource:
    """A data source with its decrypted password, ready to connect."""

    definition: DataSourceDefinition
    password: str | None = None


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rows of one page.

    Attributes:
        columns: the result's column names, in order.
        rows: at most the requested number of rows (the driver's row
            objects, never copied).
        has_more: whether at least one more row exists after this page.
        type_codes: the driver's type code per column (``None`` if unknown),
            used to introspect column types when the preview has no rows.
    """

    columns: tuple[str, ...]
    rows: Sequence[Sequence[Any]]
    has_more: bool
    type_codes: tuple[object, ...] = ()


def async_url(url: str, password: str | None = None) -> URL:
    """The async SQLAlchemy URL of a data source, with its password.

    Raises:
        InvalidRequest: code ``InvalidDataSource`` for an unparsable URL.
    """
    try:
        u = make_url(url)
    except ArgumentError:
        raise InvalidRequest(
            "The data source URL is not a valid SQLAlchemy URL "
            "(e.g. postgresql://user@host/db or sqlite:///path/to/file.db)",
            code="InvalidDataSource",
        ) from None
    backend = u.get_backend_name()
    if u.drivername == backend and backend in _ASYNC_DRIVERS:
        u = u.set(drivername=f"{backend}+{_ASYNC_DRIVERS[backend]}")
    if password is not None:
        u = u.set(password=password)
    return u


def _unavailable(name: str) -> StorageError:
    return StorageError(
        f"Data source {name!r} is not reachable; try again later",
        code="DatabaseUnavailable",
    )


def _bindable(dialect: str, params: Mapping[str, Any]) -> dict[str, Any]:
    if dialect != "sqlite":
        return dict(params)
    # sqlite3 has no DECIMAL and its date adapters are deprecated: bind the
    # values in the forms SQLite compares correctly.
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Decimal):
            value = float(value)
        elif isinstance(value, dt.datetime):
            value = value.isoformat(" ")
        elif isinstance(value, dt.date):
            value = value.isoformat()
        out[key] = value
    return out


class DataSourcePool:
    """Engines of the data sources, built lazily, closed by :meth:`close`."""

    def __init__(self) -> None:
        self._engines: dict[str, tuple[ResolvedSource, AsyncEngine]] = {}
        self._sqlite: dict[str, tuple[ResolvedSource, SqliteRunner]] = {}

    def _sqlite_runner(self, source: ResolvedSource) -> SqliteRunner | None:
        """The thread-pool runner of a SQLite *file* source, else ``None``."""
        name = source.definition.name
        cached = self._sqlite.get(name)
        if cached is not None and cached[0] == source:
            return cached[1]
        url = async_url(source.definition.url, source.password)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        if cached is not None:
            asyncio.get_running_loop().create_task(cached[1].close())
        runner = SqliteRunner(url, source.definition)
        self._sqlite[name] = (source, runner)
        return runner

    def _engine(self, source: ResolvedSource) -> AsyncEngine:
        name = source.definition.name
        cached = self._engines.get(name)
        if cached is not None and cached[0] == source:
            return cached[1]
        if cached is not None:
            # The definition or password changed: close the old pool later.
            asyncio.get_running_loop().create_task(cached[1].dispose())
        d = source.definition
        url = async_url(d.url, source.password)
        kwargs: dict[str, Any] = {}
        if url.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": d.connect_timeout}
            if url.database not in (None, "", ":memory:"):
                kwargs.update(pool_size=d.pool_size, max_overflow=0)
        else:
            kwargs.update(pool_size=d.pool_size, max_overflow=0, pool_timeout=30)
            if url.get_backend_name() == "postgresql":
                # Server-side fence in addition to our asyncio timeout.
                ms = str(int(d.query_timeout * 1000))
                kwargs["connect_args"] = {
                    "timeout": d.connect_timeout,
                    "server_settings": {"statement_timeout": ms},
                }
        try:
            engine = create_async_engine(url, **kwargs)
        except (NoSuchModuleError, ImportError, ArgumentError, TypeError) as exc:
            raise InvalidRequest(
                f"Data source {name!r}: the database driver for "
                f"{url.drivername!r} is not installed or does not accept the "
                "settings",
                code="InvalidDataSource",
            ) from exc
        self._engines[name] = (source, engine)
        return engine

    async def forget(self, name: str) -> None:
        """Close the engine of a changed or deleted data source."""
        cached = self._engines.pop(name, None)
        if cached is not None:
            await cached[1].dispose()
        runner = self._sqlite.pop(name, None)
        if runner is not None:
            await runner[1].close()

    async def close(self) -> None:
        """Close every engine."""
        for name in list(self._engines) + list(self._sqlite):
            await self.forget(name)

    async def test(self, source: ResolvedSource) -> None:
        """Open a connection and run ``SELECT 1``.

        Raises:
            StorageError: ``DatabaseUnavailable``.
        """
        await self.run(source, "SELECT 1", {}, read_only=True, limit=1)

    async def run(
        self,
        source: ResolvedSource,
        sql: str,
        params: Mapping[str, Any],
        *,
        read_only: bool,
        limit: int,
        offset: int = 0,
        paged: bool = False,
        commit: bool = True,
    ) -> QueryResult:
        """Run one statement with bound ``params``.

        Args:
            source: the data source.
            sql: a checked statement (see :mod:`adapter_server.sqltext`).
            params: bind values; never formatted into the text.
            read_only: run in a transaction that is rolled back (and is
                ``READ ONLY`` on PostgreSQL).
            limit: the page size; one more row is read to learn ``has_more``.
            offset: rows to skip (paged statements).
            paged: wrap the statement as a sub-query with LIMIT/OFFSET.
            commit: commit a write statement (``False`` for a preview).

        Returns:
            The page of rows.

        Raises:
            StorageError: ``DatabaseUnavailable``, ``QueryTimeout`` or
                ``QueryFailed``; the transaction is rolled back.
        """
        d = source.definition
        runner = self._sqlite_runner(source)
        engine = None if runner is not None else self._engine(source)
        dialect = "sqlite" if engine is None else engine.dialect.name
        values = _bindable(dialect, params)
        if paged:
            # The operator's statement on its own lines so nothing it holds can
            # swallow the wrapper; LIMIT/OFFSET are bound values too.
            sql = (
                f"SELECT * FROM (\n{sql}\n) AS jplink_page"  # noqa: S608
                " LIMIT :jplink_limit OFFSET :jplink_offset"
            )
            values.update(jplink_limit=limit + 1, jplink_offset=offset)
        if runner is not None:
            return await self._run_sqlite(
                runner, d, sql, values, read_only, limit, commit
            )
        assert engine is not None
        try:
            async with asyncio.timeout(d.connect_timeout):
                conn = await engine.connect()
        except (TimeoutError, OSError, SQLAlchemyError) as exc:
            log.debug("connect to %s failed: %r", d.name, exc)
            raise _unavailable(d.name) from exc
        try:
            async with asyncio.timeout(d.query_timeout):
                return await self._execute(conn, sql, values, read_only, limit, commit)
        except TimeoutError as exc:
            raise StorageError(
                f"The query did not finish within {d.query_timeout:g} s; narrow the "
                "parameters or ask the provider to raise the limit",
                code="QueryTimeout",
            ) from exc
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == _PG_QUERY_CANCELED:
                raise StorageError(
                    f"The query did not finish within {d.query_timeout:g} s",
                    code="QueryTimeout",
                ) from exc
            if exc.connection_invalidated:
                raise _unavailable(d.name) from exc
            log.debug("query on %s failed: %r", d.name, exc)
            raise StorageError(
                f"The query on data source {d.name!r} failed; the provider's log "
                "has the details",
                code="QueryFailed",
                detail={"error": type(exc.orig).__name__},
            ) from exc
        except SQLAlchemyError as exc:
            log.debug("query on %s failed: %r", d.name, exc)
            raise StorageError(
                f"The query on data source {d.name!r} failed", code="QueryFailed"
            ) from exc
        finally:
            await asyncio.shield(conn.close())

    @staticmethod
    async def _run_sqlite(
        runner: SqliteRunner,
        d: DataSourceDefinition,
        sql: str,
        values: dict[str, Any],
        read_only: bool,
        limit: int,
        commit: bool,
    ) -> QueryResult:
        try:
            rows, more, codes, columns = await runner.run(
                sql, values, read_only=read_only, limit=limit, commit=commit
            )
        except ConnectFailed as exc:
            log.debug("connect to %s failed: %r", d.name, exc.__cause__)
            raise _unavailable(d.name) from exc
        except QueryInterrupted as exc:
            raise StorageError(
                f"The query did not finish within {d.query_timeout:g} s; narrow the "
                "parameters or ask the provider to raise the limit",
                code="QueryTimeout",
            ) from exc
        except DBAPIError as exc:
            log.debug("query on %s failed: %r", d.name, exc)
            raise StorageError(
                f"The query on data source {d.name!r} failed; the provider's log "
                "has the details",
                code="QueryFailed",
                detail={"error": type(exc.orig).__name__},
            ) from exc
        except SQLAlchemyError as exc:
            log.debug("query on %s failed: %r", d.name, exc)
            raise StorageError(
                f"The query on data source {d.name!r} failed", code="QueryFailed"
            ) from exc
        return QueryResult(columns, rows, more, codes)

    @staticmethod
    async def _execute(
        conn: AsyncConnection,
        sql: str,
        values: dict[str, Any],
        read_only: bool,
        limit: int,
        commit: bool,
    ) -> QueryResult:
        trans = await conn.begin()
        try:
            if read_only and conn.dialect.name == "postgresql":
                await conn.execute(text("SET TRANSACTION READ ONLY"))
            result = await conn.execute(text(sql), values)
            if result.returns_rows:
                columns = tuple(result.keys())
                rows, more, codes = fetch_page(result, limit)
                page = QueryResult(columns, rows, more, codes)
            else:
                page = QueryResult(("rowcount",), ((result.rowcount,),), False)
            if read_only or not commit:
                await trans.rollback()
            else:
                await trans.commit()
            return page
        except BaseException:
            if trans.is_active:
                await trans.rollback()
            raise
