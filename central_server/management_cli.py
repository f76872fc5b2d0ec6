"""``jplink central mgmt ...``: the operator's management-request commands.

The same service functions as the admin API (:mod:`central_server.management`);
errors are rendered once, by the root command.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from jplink.cli_support import cli_actor, echo_json, utc_now
from jplink.storage import Database

from . import management
from ._cli_support import config_of, run
from ._cli_support import home_option as _home
from .management_api import management_request_json
from .member_requests import RequestStatus

__all__ = ["mgmt"]

T = TypeVar("T")


def _run(home: Path | None, work: Callable[[Database], Awaitable[T]]) -> T:
    return run(config_of(home), work)


def _echo(data: Any) -> None:
    echo_json(data, sort_keys=True, ensure_ascii=True)


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
            db, cli_actor(), request_id, now=utc_now()
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
            db, cli_actor(), request_id, reason, now=utc_now()
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
            db, cli_actor(), state == "on", now=utc_now()
        )

    _echo({"enabled": _run(home, work)})
