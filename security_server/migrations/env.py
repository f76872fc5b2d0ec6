"""Alembic environment of the security server (see jplink.storage.migrations)."""

from __future__ import annotations

from jplink.storage.migrations import run_env
from security_server.models import Base

run_env(Base.metadata)
