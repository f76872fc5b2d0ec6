"""Fixtures: a migrated security-server database and an instance home."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jplink.storage import Database
from security_server import identity, softtoken
from security_server.config import CONFIG_FILE, SecurityServerConfig, load_ss_config
from security_server.db import open_database
from security_server.softtoken import UnlockedToken

from .helpers import OWNER, OWNER_NAME, PIN, SERVER_CODE, make_anchor


@dataclass(frozen=True)
class Server:
    """An initialised server with a logged-in token."""

    db: Database
    config: SecurityServerConfig
    unlocked: UnlockedToken


@pytest.fixture
def ss_config(tmp_path: Path) -> SecurityServerConfig:
    home = tmp_path / "ss-home"
    home.mkdir()
    (home / CONFIG_FILE).write_text("")
    return load_ss_config(home)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database on SQLite and on PostgreSQL."""
    database = await open_database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def server(
    db: Database, ss_config: SecurityServerConfig, now: dt.datetime
) -> Server:
    """Initialised with owner COM/1111, server ss1, and a token with PIN."""
    await identity.initialize(
        db,
        ss_config,
        "test",
        anchor=make_anchor(now),
        owner=OWNER,
        owner_name=OWNER_NAME,
        server_code=SERVER_CODE,
        now=now,
    )
    await softtoken.init_token(db, "test", pin=PIN, now=now)
    unlocked = await softtoken.login(db, PIN)
    return Server(db, ss_config, unlocked)
