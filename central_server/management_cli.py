"""``jplink central mgmt ...``: the operator's management-request commands.

The same service functions as the admin API (:mod:`central_server.management`);
errors are rendered once, by the root command.
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

from jplink.config import resolve_home
from jplink.storage import Database

from . import management
from .config import load_central_config
from .db import open_database
from .management_api import management_request_json
from .member_requests import RequestStatus

__all__ = ["mgmt"]

T = TypeVar("T")

_home = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Instance directory (default: $JPLINK_CENTRAL_HOME, $JPLINK_HOME/central).",
)


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _run(home: Path | None, work: Callable[[Database], Awaitable[T]]) -> T:
    config = load_central_config(resolve_home("central", home))

    async def main() -> T:
        db = await open_database(config.db_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@click.group()
def mgmt() -> None:
    """Management requests from security servers (authCertReg, clientReg ...)."""


@mgmt.command("list")
@_home
@click.option("--status", type=click.Choice([s.value for s in RequestStatus]))
def mgmt_list(home: Path | None, status: str | None) -> None:
    """List management requests (JSON), optionally of one status."""
    wanted = RequestStatus(status) if status else None

    async def work(db: Database) -> list[dict[str, Any]]:
        found = await management.list_management_requests(db, status=wanted)
        return [management_request_json(v) for v in found]

    _echo(_run(home, work))


@mgmt.command("approve")
@_home
@click.argument("request_id", type=click.IntRange(min=1))
def mgmt_approve(home: Path | None, request_id: int) -> None:
    """Approve a pending request: the registry changes at once."""

    async def work(db: Database) -> dict[str, Any]:
        view = await management.approve_management_request(
            db, _actor(), request_id, now=_now()
        )
        return management_request_json(view)

    _echo(_run(home, work))


@mgmt.command("decline")
@_home
@click.argument("request_id", type=click.IntRange(min=1))
@click.option("--reason", required=True, help="Why the request is declined.")
def mgmt_decline(home: Path | None, request_id: int, reason: str) -> None:
    """Decline a pending request with a reason."""

    async def work(db: Database) -> dict[str, Any]:
        view = await management.decline_management_request(
            db, _actor(), request_id, reason, now=_now()
        )
        return management_request_json(view)

    _echo(_run(home, work))


@mgmt.command("auto-approve")
@_home
@click.argument("state", type=click.Choice(["on", "off"]))
def mgmt_auto_approve(home: Path | None, state: str) -> None:
    """Apply verified authCertReg/clientReg from existing members at once."""

    async def work(db: Database) -> bool:
        return await management.set_auto_approve(
            db, _actor(), state == "on", now=_now()
        )

    _echo({"enabled": _run(home, work)})
