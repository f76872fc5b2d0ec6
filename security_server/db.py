"""Opening the security server's database with its schema up to date."""

from __future__ import annotations

from pathlib import Path

from jplink.storage import Database, create_database, upgrade_database

__all__ = ["MIGRATIONS", "open_database"]

#: The Alembic script directory of the security server.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def open_database(url: str) -> Database:
    """Create the engine for ``url`` and migrate the schema to head.

    Args:
        url: a SQLAlchemy URL (``sqlite:///...`` or ``postgresql://...``).

    Returns:
        The ready database; the caller disposes of it.

    Raises:
        StorageError: an unsupported URL or a database failure.
    """
    db = create_database(url)
    try:
        await upgrade_database(db, MIGRATIONS)
    except BaseException:
        await db.dispose()
        raise
    return db
