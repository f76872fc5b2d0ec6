"""Alembic environment of the ca_tsa tables (see jplink.storage.migrations)."""

from __future__ import annotations

from ca_tsa.models import Base
from jplink.storage.migrations import run_env

run_env(Base.metadata)
