"""Fixtures: a migrated, initialised central-server database."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from central_server import registry
from central_server.db import open_database
from jplink.storage import Database

INSTANCE = "JP-TEST"
CLASSES = {"COM": "Companies", "GOV": "Government"}


@pytest.fixture
async def db(db_url: str, now: dt.datetime) -> AsyncIterator[Database]:
    """An initialised registry on SQLite and on PostgreSQL."""
    database = await open_database(db_url)
    try:
        await registry.initialize(
            database, "test", instance=INSTANCE, member_classes=CLASSES, now=now
        )
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def sqlite_db(tmp_path: Path, now: dt.datetime) -> AsyncIterator[Database]:
    """An initialised registry on SQLite only (for slower, HTTP-level tests)."""
    database = await open_database(f"sqlite:///{tmp_path / 'central.db'}")
    try:
        await registry.initialize(
            database, "test", instance=INSTANCE, member_classes=CLASSES, now=now
        )
        yield database
    finally:
        await database.dispose()
