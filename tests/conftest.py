"""Shared fixtures: fixed time, vectors, databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.postgres import PostgresServer, find_pg_bin, running_postgres

# `make test` (and so CI) runs the property tests on the same sequence of
# examples every time (keys and certificates made by fixtures still differ
# per run). `make fuzz` explores with fresh random examples, where new failures
# are looked for; a failure found there gets a fix and a plain regression test
# (as the relative-namespace case in test_signature_roundtrip.py).
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)

#: Real X-Road test data lives beside the repository, never inside it.
VECTORS = Path(__file__).resolve().parents[2] / "shared" / "xroad" / "vectors"

FIXED_NOW = dt.datetime(2026, 11, 21, 9, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def now() -> dt.datetime:
    """A fixed, timezone-aware 'now' for core logic."""
    return FIXED_NOW


@pytest.fixture(scope="session")
def xroad_vectors() -> Path:
    """The folder of X-Road vectors, or skip when it is absent."""
    if not (VECTORS / "INDEX.md").is_file():
        pytest.skip(f"X-Road vectors folder {VECTORS} is absent")
    return VECTORS


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server, one per test process."""
    if find_pg_bin() is None:
        pytest.skip(
            "PostgreSQL server binaries are not installed (apt install postgresql)"
        )
    with running_postgres() as server:
        yield server


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """A fresh empty PostgreSQL database for one test."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a storage test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


def require_tool(name: str) -> str:
    """The path of a command-line tool the test uses as an independent peer."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is required for this test (.ci/run installs it)")
    return path
