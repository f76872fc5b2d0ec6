"""``jplink ss api-key ...``: admin API keys (create, list, revoke).

A key is printed once, at creation, and stored only as its SHA-256. These
commands work on any instance home, initialised or not, so the first key
can be made before onboarding starts through the admin API.
"""

from __future__ import annotations

from pathlib import Path

import click

from jplink.storage import Database

from ._cli_support import actor, config_of, echo_json, home_option, now, run
from .admin import ApiKeyInfo, Role, create_api_key, list_api_keys, revoke_api_key
from .admin.roles import parse_roles

__all__ = ["api_key"]


@click.group("api-key")
def api_key() -> None:
    """Admin API keys bound to roles."""


@api_key.command("create")
@home_option
@click.option(
    "--name", required=True, help="Who holds the key (shown in the audit log)."
)
@click.option(
    "--role",
    "roles",
    required=True,
    multiple=True,
    type=click.Choice([r.value for r in Role]),
    help="A role of the key; repeat for several.",
)
def api_key_create(home: Path | None, name: str, roles: tuple[str, ...]) -> None:
    """Create a key; it is printed once and stored only hashed."""
    bound = parse_roles(roles)

    async def work(db: Database) -> tuple[ApiKeyInfo, str]:
        return await create_api_key(db, actor(), name=name, roles=bound, now=now())

    info, key = run(config_of(home), work)
    words = ", ".join(r.value for r in info.roles)
    click.echo(f"API key {info.key_id} ({words}), shown once:")
    click.echo(key)


@api_key.command("list")
@home_option
def api_key_list(home: Path | None) -> None:
    """List keys (never the keys themselves) as JSON."""
    echo_json(run(config_of(home), list_api_keys))


@api_key.command("revoke")
@home_option
@click.argument("key_id")
def api_key_revoke(home: Path | None, key_id: str) -> None:
    """Revoke a key by its id."""

    async def work(db: Database) -> ApiKeyInfo:
        return await revoke_api_key(db, actor(), key_id, now=now())

    info = run(config_of(home), work)
    click.echo(f"Revoked API key {info.key_id}")
