"""Data sources in the adapter's store: save, list, resolve, test, delete.

A data source's password never stays in its URL: it is moved out and kept
encrypted (:class:`~adapter_server.vault.PasswordVault`); listings and exports
never show it. Each change is audit-logged in its own transaction.
"""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, NotFound
from jplink.storage import Database

from .audit import AuditLog
from .datasources import DataSourcePool, ResolvedSource, async_url
from .definitions import DataSourceDefinition
from .models import DataSourceRow, ServiceRow
from .vault import PasswordVault

__all__ = ["DataSourceRegistry", "without_password"]

log = logging.getLogger(__name__)


def without_password(
    source: DataSourceDefinition, password: str | None
) -> tuple[DataSourceDefinition, str | None]:
    """Move a password out of ``source.url``.

    Args:
        source: the definition as submitted.
        password: a password given separately; it wins over one in the URL.

    Returns:
        The definition with a password-free URL, and the password to keep
        (``None``: keep the stored one).

    Raises:
        InvalidRequest: an unparsable URL.
    """
    url = async_url(source.url)
    if url.password is not None:
        password = password if password is not None else str(url.password)
    # URL.set(password=None) means "unchanged"; the namedtuple's _replace
    # really drops it.
    clean = make_url(source.url)._replace(password=None)
    return (
        dataclasses.replace(source, url=clean.render_as_string(hide_password=False)),
        password,
    )


def _definition(row: DataSourceRow) -> DataSourceDefinition:
    return DataSourceDefinition(
        name=row.name,
        url=row.url,
        pool_size=row.pool_size,
        connect_timeout=row.connect_timeout,
        query_timeout=row.query_timeout,
    )


class DataSourceRegistry:
    """The data sources of the adapter's store.

    Args:
        db: the adapter's store.
        vault: encrypts data-source passwords.
        pool: runs connection tests; forgets engines of changed sources.
        audit: records each change in the change's transaction.
    """

    def __init__(
        self, db: Database, vault: PasswordVault, pool: DataSourcePool, audit: AuditLog
    ) -> None:
        self._db = db
        self._vault = vault
        self._pool = pool
        self._audit = audit

    async def row(self, s: AsyncSession, name: str) -> DataSourceRow:
        """The stored row of data source ``name`` in transaction ``s``.

        Raises:
            NotFound: no such data source.
        """
        row = await s.scalar(select(DataSourceRow).where(DataSourceRow.name == name))
        if row is None:
            raise NotFound(f"No data source named {name!r}")
        return row

    async def store(
        self, s: AsyncSession, source: DataSourceDefinition, password: str | None
    ) -> None:
        """Create or replace a (password-free) data source in transaction ``s``.

        Args:
            s: the transaction.
            source: the definition, already through :func:`without_password`.
            password: the new password; ``None`` keeps a stored one.
        """
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

    async def save(
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
        source, password = without_password(source, password)
        async with self._db.transaction() as s:
            await self.store(s, source, password)
            self._audit.record(
                s,
                "datasource.save",
                source.name,
                {"url": source.url, "password_changed": password is not None},
            )
        await self._pool.forget(source.name)
        log.info("data source %s saved", source.name)
        return source

    async def list_all(self) -> tuple[DataSourceDefinition, ...]:
        """Every data source, by name."""
        async with self._db.transaction() as s:
            rows = await s.scalars(select(DataSourceRow).order_by(DataSourceRow.name))
            return tuple(_definition(r) for r in rows)

    def resolved(self, row: DataSourceRow) -> ResolvedSource:
        """A stored row with its decrypted password.

        Raises:
            StorageError: ``SecretUnreadable`` (another key file).
        """
        token = row.password_token
        password = None if token is None else self._vault.decrypt(token)
        return ResolvedSource(_definition(row), password)

    async def candidate(
        self, s: AsyncSession, source: DataSourceDefinition, password: str | None
    ) -> ResolvedSource:
        """What ``source`` would resolve to once stored, without storing it.

        Args:
            s: a transaction to read the stored password from.
            source: a password-free definition (see :func:`without_password`).
            password: its new password; ``None`` keeps the stored one, if any.

        Raises:
            StorageError: ``SecretUnreadable`` (another key file).
        """
        if password is None:
            row = await s.scalar(
                select(DataSourceRow).where(DataSourceRow.name == source.name)
            )
            if row is not None and row.password_token is not None:
                password = self._vault.decrypt(row.password_token)
        return ResolvedSource(source, password)

    async def resolve(self, name: str) -> ResolvedSource:
        """A data source with its decrypted password.

        Raises:
            NotFound: no such data source.
            StorageError: ``SecretUnreadable`` (another key file).
        """
        async with self._db.transaction() as s:
            row = await self.row(s, name)
            return self.resolved(row)

    async def test(self, name: str) -> None:
        """Connect to a data source and run ``SELECT 1``.

        Raises:
            NotFound: no such data source.
            StorageError: ``DatabaseUnavailable``.
        """
        await self._pool.test(await self.resolve(name))

    async def delete(self, name: str) -> None:
        """Remove a data source that no service uses.

        Raises:
            NotFound: no such data source.
            Conflict: services still use it.
        """
        async with self._db.transaction() as s:
            row = await self.row(s, name)
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
            self._audit.record(s, "datasource.delete", name)
        await self._pool.forget(name)
        log.info("data source %s deleted", name)
