"""Storage helpers shared by every component: engines, sessions, migrations."""

from __future__ import annotations

from .db import Database, create_database, normalize_url, sqlite_url
from .migrations import open_component_database, upgrade_database

__all__ = [
    "Database",
    "create_database",
    "normalize_url",
    "open_component_database",
    "sqlite_url",
    "upgrade_database",
]
