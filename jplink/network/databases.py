"""One PostgreSQL database per component for ``up --database``.

Every component keeps its own schema (each has its own Alembic chain and
``alembic_version`` table), so one database cannot hold two of them. Given a
PostgreSQL URL, ``up`` creates ``<database>_<component>`` next to it on the
same server (the URL's user needs ``CREATEDB``) and gives each component its
own URL. The databases are kept after ``down`` (drop them with ``dropdb``).
"""

from __future__ import annotations

import asyncio
import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from jplink.errors import ConfigurationError, StorageError

__all__ = ["COMPONENTS", "component_databases"]

#: The components that keep a database, in start order.
COMPONENTS = ("ca", "central", "adapter", "ss-mgmt", "ss-a", "ss-b")


def _names(base: str, prefix: str) -> dict[str, str]:
    safe = re.sub(r"[^a-z0-9_]", "_", prefix.lower())[:20]
    return {c: f"{base}_{safe}_{c.replace('-', '_')}"[:63] for c in COMPONENTS}


async def _create(url: str, names: list[str]) -> None:
    import asyncpg  # type: ignore[import-untyped]

    parsed = make_url(url)
    conn = await asyncpg.connect(
        user=parsed.username,
        password=parsed.password,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
    )
    try:
        existing = {r[0] for r in await conn.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name in existing:
                raise ConfigurationError(
                    f"Database {name} already exists; drop it or use another --dir"
                )
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def component_databases(url: str, prefix: str) -> dict[str, str]:
    """Create one database per component on the server of ``url``.

    Args:
        url: ``postgresql://user[:password]@host[:port]/database``.
        prefix: distinguishes networks on one server (the directory's name).

    Returns:
        Component -> its database URL.

    Raises:
        ConfigurationError: not a PostgreSQL URL, or a database exists.
        StorageError: the server refused the connection or the creation.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"Not a database URL: {exc}") from exc
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        raise ConfigurationError("--database must be postgresql://user@host/database")
    names = _names(parsed.database, prefix)
    try:
        asyncio.run(
            _create(
                url.replace("postgresql+asyncpg", "postgresql"), list(names.values())
            )
        )
    except ConfigurationError:
        raise
    except (OSError, Exception) as exc:  # asyncpg raises its own tree
        raise StorageError(f"Cannot create the component databases: {exc}") from exc
    plain = parsed.set(drivername="postgresql")
    return {
        c: plain.set(database=name).render_as_string(hide_password=False)
        for c, name in names.items()
    }
