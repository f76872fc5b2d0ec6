"""Alembic environment of the adapter server (see jplink.storage.migrations)."""

from __future__ import annotations

from adapter_server.models import Base
from jplink.storage.migrations import run_env

run_env(Base.metadata)
