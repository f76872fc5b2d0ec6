"""Opening the adapter's own store and its services, for the app and the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from jplink.storage import open_component_database

from .audit import CLI_ACTOR
from .config import AdapterConfig
from .datasources import DataSourcePool
from .registry import Registry
from .vault import PasswordVault

__all__ = ["MIGRATIONS", "open_registry"]

#: The adapter's Alembic script directory.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@asynccontextmanager
async def open_registry(
    config: AdapterConfig,
    pool: DataSourcePool | None = None,
    *,
    actor: str = CLI_ACTOR,
) -> AsyncIterator[Registry]:
    """Open (and migrate) the store, load the key, yield a :class:`Registry`.

    Args:
        config: the instance configuration.
        pool: a data-source pool to share; a private one is closed on exit.
        actor: whom the audit log names for changes (``cli`` by default; the
            server passes ``system`` and acts per API key, see
            :meth:`Registry.acting_as`).

    Raises:
        ConfigurationError: the key file is missing or unsafe.
        StorageError: the store cannot be opened or migrated.
    """
    vault = PasswordVault.from_file(config.secret_key_file)
    db = await open_component_database(config.db_url, MIGRATIONS)
    own_pool = pool is None
    sources = pool or DataSourcePool()
    try:
        yield Registry(db, vault, sources, actor=actor)
    finally:
        if own_pool:
            await sources.close()
        await db.dispose()
