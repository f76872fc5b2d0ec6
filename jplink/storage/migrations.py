"""Alembic migrations, run programmatically over an async engine.

Each component keeps an Alembic script directory (``<component>/migrations``)
whose ``env.py`` calls :func:`run_env`. Servers and CLI commands call
:func:`upgrade_database` at start-up, so a new release migrates its database
before it serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData

from .db import Database, create_database

__all__ = ["alembic_config", "open_component_database", "run_env", "upgrade_database"]


def alembic_config(script_location: Path) -> Config:
    """An in-memory Alembic configuration for a component's scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    return cfg


async def upgrade_database(
    db: Database, script_location: Path, revision: str = "head"
) -> None:
    """Bring the database schema to ``revision``.

    Args:
        db: the component's database.
        script_location: its Alembic script directory.
        revision: target revision (``head`` by default; each component keeps
            one linear history, checked by tests/test_migrations.py).
    """

    def _upgrade(conn: Connection) -> None:
        cfg = alembic_config(script_location)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def open_component_database(url: str, script_location: Path) -> Database:
    """Create the engine for ``url`` and migrate the schema to head.

    Args:
        url: a SQLAlchemy URL (``sqlite:///...`` or ``postgresql://...``).
        script_location: the component's Alembic script directory.

    Returns:
        The ready database; the caller disposes of it.

    Raises:
        StorageError: an unsupported URL or a database failure (the engine
            is disposed of before the error propagates).
    """
    db = create_database(url)
    try:
        await upgrade_database(db, script_location)
    except BaseException:
        await db.dispose()
        raise
    return db


def run_env(target_metadata: MetaData) -> None:
    """The body of every component's ``env.py``.

    Online mode only: the connection comes from :func:`upgrade_database`.
    Offline SQL generation (``alembic upgrade --sql``) uses a URL instead.
    """
    connection: Any = context.config.attributes.get("connection")
    if connection is None:
        url = context.config.get_main_option("sqlalchemy.url")
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
