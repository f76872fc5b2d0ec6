"""Engines and session factories, built at start-up and never at import time.

The embedded default is SQLite through aiosqlite, in WAL mode with a busy
timeout so a CLI command and a running server can share one file. Production
is PostgreSQL through asyncpg. URLs may be given without the driver
(``sqlite:///x.db``, ``postgresql://u@h/db``); :func:`normalize_url` adds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ..errors import StorageError

__all__ = ["Database", "create_database", "normalize_url", "sqlite_url"]


def sqlite_url(path: Path) -> str:
    """The async SQLAlchemy URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


def normalize_url(url: str) -> str:
    """Give a database URL its async driver.

    Raises:
        StorageError: for a database kind JP-LINK does not support.
    """
    try:
        u = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError for garbage
        raise StorageError(f"Invalid database URL: {exc}") from exc
    backend = u.get_backend_name()
    if backend == "sqlite":
        return str(u.set(drivername="sqlite+aiosqlite"))
    if backend == "postgresql":
        return u.set(drivername="postgresql+asyncpg").render_as_string(
            hide_password=False
        )
    raise StorageError(
        f"Unsupported database kind {backend!r} (use sqlite or postgresql)"
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers proceed while one writer commits; NORMAL sync is safe
    # with WAL (a crash can lose the last commits but never corrupts).
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


@dataclass(frozen=True, slots=True)
class Database:
    """An engine and its session factory, owned by one app or command."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One session, one transaction: commit on success, roll back on error.

        Raises:
            StorageError: when the database fails (the transaction is rolled back).
        """
        async with self.sessions() as session:
            try:
                async with session.begin():
                    yield session
            except SQLAlchemyError as exc:
                raise StorageError(
                    "The database failed; nothing was changed",
                    detail={"error": type(exc).__name__},
                ) from exc

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_database(url: str, *, pool_size: int = 10, echo: bool = False) -> Database:
    """Create the engine and session factory for ``url``.

    Args:
        url: a SQLAlchemy URL (driver optional).
        pool_size: connections kept open (PostgreSQL).
        echo: log SQL (debugging only).
    """
    url = normalize_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("postgresql"):
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    else:
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    return Database(engine=engine, sessions=sessions)
