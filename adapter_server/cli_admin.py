"""``jplink adapter apikey`` and ``jplink adapter audit``: who may change what.

API key changes are made to the key file and recorded in the audit log in
one store transaction (see :meth:`AuditLog.recording`), as ``cli``.
"""

from __future__ import annotations

from pathlib import Path

import click

from ._cli_common import echo_json, home_option, load_config, with_registry
from .apikeys import ApiKeyInfo, create_api_key, list_api_keys, revoke_api_key
from .registry import Registry

__all__ = ["apikey", "audit", "create_key_audited"]


async def create_key_audited(
    registry: Registry, path: Path, name: str
) -> tuple[ApiKeyInfo, str]:
    """Create an admin API key and record it in the audit log.

    Returns:
        The key's facts and the plain key (shown once).

    Raises:
        InvalidRequest: a bad name.
        ConfigurationError: the key file is unsafe or malformed.
        StorageError: the store failed (no key was created).
    """
    async with registry.audit.recording("apikey.create", name) as learned:
        info, key = create_api_key(path, name)
        learned["key_id"] = info.key_id
    return info, key


@click.group("apikey")
def apikey() -> None:
    """Admin API keys (stored hashed)."""


@apikey.command("create")
@home_option
@click.option("--name", required=True, help="Who the key is for.")
def apikey_create(home: str | None, name: str) -> None:
    """Create a key; it is printed once."""
    path = load_config(home).admin_api_key_file
    info, key = with_registry(home, lambda r: create_key_audited(r, path, name))
    click.echo(f"Admin API key {info.key_id} (shown once):")
    click.echo(key)


@apikey.command("list")
@home_option
def apikey_list(home: str | None) -> None:
    """List key ids and names."""
    for info in list_api_keys(load_config(home).admin_api_key_file):
        click.echo(f"{info.key_id}  {info.name}")


@apikey.command("revoke")
@home_option
@click.argument("key_id")
def apikey_revoke(home: str | None, key_id: str) -> None:
    """Revoke a key by id."""
    path = load_config(home).admin_api_key_file

    async def revoke(registry: Registry) -> None:
        async with registry.audit.recording("apikey.revoke", key_id):
            revoke_api_key(path, key_id)

    with_registry(home, revoke)
    click.echo(f"Revoked {key_id}")


@click.command("audit")
@home_option
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON entries.")
def audit(home: str | None, limit: int, offset: int, as_json: bool) -> None:
    """Show the audit log of admin changes, newest first."""
    entries = with_registry(home, lambda r: r.audit.entries(limit=limit, offset=offset))
    if as_json:
        echo_json([e.to_dict() for e in entries])
        return
    for e in entries:
        click.echo(f"{e.at.isoformat()}\t{e.actor}\t{e.action}\t{e.target}")
