"""Plumbing shared by the components' click commands.

Every component's commands take ``--home`` (see
:func:`jplink.config.resolve_home`), name their CLI user in the audit log,
read the wall clock once, open (and migrate) the database for the length of
one command and print results as JSON. This module holds those pieces, and
nothing about any one component: it takes the component's name, database URL
and Alembic script directory as arguments (the core never imports a server).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .storage import Database, open_component_database

__all__ = ["cli_actor", "echo_json", "home_option", "run_with_database", "utc_now"]

T = TypeVar("T")
FC = TypeVar("FC", bound=Callable[..., Any])


def home_option(component: str) -> Callable[[FC], FC]:
    """The ``--home`` option of ``component``'s commands (a ``Path`` or None).

    Args:
        component: the name :func:`jplink.config.resolve_home` takes
            (``central``, ``ss`` ...); it names the environment variables in
            the help text.
    """
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=(
            f"Instance directory (default: $JPLINK_{component.upper()}_HOME, "
            f"$JPLINK_HOME/{component})."
        ),
    )


def cli_actor() -> str:
    """The audit-log actor of a CLI command: ``cli:<login name>``."""
    return f"cli:{getpass.getuser()}"


def utc_now() -> dt.datetime:
    """The wall clock, aware, in UTC; a command reads it once and passes it on."""
    return dt.datetime.now(dt.UTC)


def run_with_database(
    url: str, script_location: Path, work: Callable[[Database], Awaitable[T]]
) -> T:
    """Open (and migrate) a database, run ``work`` on it, dispose of the engine.

    Args:
        url: the component's database URL.
        script_location: its Alembic script directory.
        work: the command's body.

    Returns:
        What ``work`` returns.

    Raises:
        StorageError: the database cannot be opened or migrated.
        JPLinkError: whatever ``work`` raises (the engine is disposed first).
    """

    async def main() -> T:
        db = await open_component_database(url, script_location)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def echo_json(
    data: Any, *, sort_keys: bool = False, ensure_ascii: bool = False
) -> None:
    """Print JSON-ready ``data`` indented by two spaces.

    Args:
        data: lists, dicts, strings, numbers, booleans and None.
        sort_keys: print object keys in sorted order.
        ensure_ascii: escape non-ASCII characters (``\\u...``).
    """
    click.echo(
        json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    )
