"""Shared pieces of the ``jplink central`` commands: ``--home``, config, running.

The generic parts live in :mod:`jplink.cli_support`; this module binds them
to the central server's configuration file and migrations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from jplink.cli_support import home_option as _home_option
from jplink.cli_support import run_with_database
from jplink.config import resolve_home
from jplink.storage import Database

from .config import CentralConfig, load_central_config
from .db import MIGRATIONS

__all__ = ["config_of", "home_option", "run"]

T = TypeVar("T")

#: ``--home``: the instance directory ($JPLINK_CENTRAL_HOME, $JPLINK_HOME/central).
home_option = _home_option("central")


def config_of(home: Path | None) -> CentralConfig:
    """The instance's configuration (``<home>/central.toml``)."""
    return load_central_config(resolve_home("central", home))


def run(config: CentralConfig, work: Callable[[Database], Awaitable[T]]) -> T:
    """Open (and migrate) the database, run ``work``, dispose of the engine."""
    return run_with_database(config.db_url, MIGRATIONS, work)
