"""Storage helpers shared by every component: engines, sessions, migrations."""

from __future__ import annotations

from .db import Database, create_database, normalize_url, sqlite_url
from .migrations import upgrade_database

__all__ = [
    "Database",
    "create_database",
    "normalize_url",
    "sqlite_url",
    "upgrade_database",
]
