"""Opening the security server's database with its schema up to date."""

from __future__ import annotations

from pathlib import Path

from jplink.storage import Database, open_component_database

__all__ = ["MIGRATIONS", "open_database"]

#: The Alembic script directory of the security server.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def open_database(url: str) -> Database:
    """Open ``url`` with the schema migrated to head (the caller disposes of it).

    See :func:`jplink.storage.open_component_database`, which raises
    StorageError for an unsupported URL or a database failure.
    """
    return await open_component_database(url, MIGRATIONS)
