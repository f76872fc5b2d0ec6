"""``jplink ss clients|services|acl|groups``: what this server offers, to whom."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from jplink.errors import InvalidRequest
from jplink.identifiers import LocalGroupId, parse_client_id, parse_identifier
from jplink.storage import Database

from . import access_rights, clients, local_groups
from . import services as svc
from ._cli_support import actor, config_of, echo_json, home_option, now, run
from .fetch import fetch_description

__all__ = ["acl", "clients_group", "groups", "services"]


@click.group("clients")
def clients_group() -> None:
    """Members and subsystems served by this server."""


@clients_group.command("add")
@home_option
@click.argument("client_id")
@click.option("--name", default="", help="The member's name (for its certificates).")
def clients_add(home: Path | None, client_id: str, name: str) -> None:
    """Add a client, e.g. SUBSYSTEM:JP/COM/1111/client."""
    ident = parse_client_id(client_id)
    run(
        config_of(home),
        lambda db: clients.add_client(db, actor(), ident, name=name, now=now()),
    )
    click.echo(f"Added {ident} (saved)")


@clients_group.command("list")
@home_option
def clients_list(home: Path | None) -> None:
    """List clients with their states (JSON)."""
    echo_json(run(config_of(home), clients.list_clients))


@clients_group.command("delete")
@home_option
@click.argument("client_id")
def clients_delete(home: Path | None, client_id: str) -> None:
    """Delete a client with its services, rights and local groups."""
    ident = parse_client_id(client_id)
    run(
        config_of(home), lambda db: clients.delete_client(db, actor(), ident, now=now())
    )
    click.echo(f"Deleted {ident}")


@click.group()
def services() -> None:
    """Service descriptions (WSDL) and services."""


@services.command("add-wsdl")
@home_option
@click.argument("client_id")
@click.option("--url", required=True, help="The WSDL's URL (fetched unless --file).")
@click.option(
    "--file",
    "wsdl_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Read the WSDL from this file instead of fetching --url.",
)
def services_add_wsdl(
    home: Path | None, client_id: str, url: str, wsdl_file: Path | None
) -> None:
    """Add a WSDL service description (disabled until enabled)."""
    config = config_of(home)
    ident = parse_client_id(client_id)
    if wsdl_file is not None:
        data = wsdl_file.read_bytes()
    else:
        timeout = config.timeouts.download_seconds
        data = asyncio.run(fetch_description(url, timeout=timeout))
    info = run(
        config,
        lambda db: svc.add_wsdl_description(
            db, actor(), ident, url=url, wsdl=data, now=now()
        ),
    )
    for s in info.services:
        click.echo(f"{s.service_id}  {s.url}")
    click.echo("The description is disabled; enable it with 'services enable'.")


@services.command("list")
@home_option
@click.argument("client_id")
def services_list(home: Path | None, client_id: str) -> None:
    """List a client's service descriptions and services (JSON)."""
    ident = parse_client_id(client_id)
    echo_json(run(config_of(home), lambda db: svc.list_descriptions(db, ident)))


@services.command("set")
@home_option
@click.argument("client_id")
@click.argument("service_code")
@click.option("--url", default=None, help="The service's address.")
@click.option("--timeout", type=float, default=None, help="Seconds (1-3600).")
@click.option("--tls-verify/--no-tls-verify", default=None)
def services_set(
    home: Path | None,
    client_id: str,
    service_code: str,
    url: str | None,
    timeout: float | None,
    tls_verify: bool | None,
) -> None:
    """Set a service's address, timeout or TLS verification."""
    if url is None and timeout is None and tls_verify is None:
        raise InvalidRequest("Give --url, --timeout or --tls-verify/--no-tls-verify")
    ident = parse_client_id(client_id)
    info = run(
        config_of(home),
        lambda db: svc.update_service(
            db,
            actor(),
            ident,
            service_code,
            url=url,
            timeout_seconds=timeout,
            tls_verify=tls_verify,
            now=now(),
        ),
    )
    echo_json(info)


@services.command("enable")
@home_option
@click.argument("client_id")
@click.argument("url")
def services_enable(home: Path | None, client_id: str, url: str) -> None:
    """Enable the services of a description."""
    ident = parse_client_id(client_id)
    run(
        config_of(home),
        lambda db: svc.set_description_enabled(
            db, actor(), ident, url, enabled=True, now=now()
        ),
    )
    click.echo(f"Enabled {url}")


@services.command("disable")
@home_option
@click.argument("client_id")
@click.argument("url")
@click.option("--notice", default="", help="Text returned to callers meanwhile.")
def services_disable(home: Path | None, client_id: str, url: str, notice: str) -> None:
    """Disable the services of a description."""
    ident = parse_client_id(client_id)
    run(
        config_of(home),
        lambda db: svc.set_description_enabled(
            db, actor(), ident, url, enabled=False, notice=notice, now=now()
        ),
    )
    click.echo(f"Disabled {url}")


@services.command("delete-description")
@home_option
@click.argument("client_id")
@click.argument("url")
def services_delete(home: Path | None, client_id: str, url: str) -> None:
    """Delete a description with its services and their access rights."""
    ident = parse_client_id(client_id)
    run(
        config_of(home),
        lambda db: svc.delete_description(db, actor(), ident, url, now=now()),
    )
    click.echo(f"Deleted {url}")


@click.group()
def acl() -> None:
    """Access rights: who may call which service."""


@acl.command("grant")
@home_option
@click.argument("client_id")
@click.argument("service_code")
@click.argument("subject")
def acl_grant(
    home: Path | None, client_id: str, service_code: str, subject: str
) -> None:
    """Grant SUBJECT (MEMBER:, SUBSYSTEM:, LOCALGROUP:, GLOBALGROUP:) a service."""
    ident, who = parse_client_id(client_id), parse_identifier(subject)
    run(
        config_of(home),
        lambda db: access_rights.grant_access(
            db, actor(), ident, service_code, who, now=now()
        ),
    )
    click.echo(f"Granted {who} access to {service_code} of {ident}")


@acl.command("revoke")
@home_option
@click.argument("client_id")
@click.argument("service_code")
@click.argument("subject")
def acl_revoke(
    home: Path | None, client_id: str, service_code: str, subject: str
) -> None:
    """Revoke one access right."""
    ident, who = parse_client_id(client_id), parse_identifier(subject)
    run(
        config_of(home),
        lambda db: access_rights.revoke_access(
            db, actor(), ident, service_code, who, now=now()
        ),
    )
    click.echo(f"Revoked {who} from {service_code} of {ident}")


@acl.command("list")
@home_option
@click.argument("client_id")
@click.option("--service", "service_code", default=None, help="Only this service.")
def acl_list(home: Path | None, client_id: str, service_code: str | None) -> None:
    """List the rights on a client's services (JSON)."""
    ident = parse_client_id(client_id)
    echo_json(
        run(
            config_of(home),
            lambda db: access_rights.list_rights_for_service(db, ident, service_code),
        )
    )


@acl.command("list-subject")
@home_option
@click.argument("subject")
def acl_list_subject(home: Path | None, subject: str) -> None:
    """List the rights granted directly to a subject (JSON)."""
    who = parse_identifier(subject)
    echo_json(
        run(config_of(home), lambda db: access_rights.list_rights_for_subject(db, who))
    )


@click.group()
def groups() -> None:
    """Local groups of a client."""


def _group(code: str) -> LocalGroupId:
    return LocalGroupId(code.removeprefix("LOCALGROUP:"))


@groups.command("add")
@home_option
@click.argument("client_id")
@click.argument("code")
@click.option("--description", default="")
def groups_add(home: Path | None, client_id: str, code: str, description: str) -> None:
    """Create a local group."""
    ident, group = parse_client_id(client_id), _group(code)

    async def work(db: Database) -> None:
        await local_groups.add_local_group(
            db, actor(), ident, group, description=description, now=now()
        )

    run(config_of(home), work)
    click.echo(f"Added {group} to {ident}")


@groups.command("list")
@home_option
@click.argument("client_id")
def groups_list(home: Path | None, client_id: str) -> None:
    """List a client's local groups with members (JSON)."""
    ident = parse_client_id(client_id)
    echo_json(
        run(config_of(home), lambda db: local_groups.list_local_groups(db, ident))
    )


@groups.command("delete")
@home_option
@click.argument("client_id")
@click.argument("code")
def groups_delete(home: Path | None, client_id: str, code: str) -> None:
    """Delete a local group and the rights granted to it."""
    ident, group = parse_client_id(client_id), _group(code)
    run(
        config_of(home),
        lambda db: local_groups.delete_local_group(
            db, actor(), ident, group, now=now()
        ),
    )
    click.echo(f"Deleted {group}")


@groups.command("add-member")
@home_option
@click.argument("client_id")
@click.argument("code")
@click.argument("member")
def groups_add_member(
    home: Path | None, client_id: str, code: str, member: str
) -> None:
    """Add a member or subsystem to a local group."""
    ident, group, who = (
        parse_client_id(client_id),
        _group(code),
        parse_client_id(member),
    )
    run(
        config_of(home),
        lambda db: local_groups.add_group_member(
            db, actor(), ident, group, who, now=now()
        ),
    )
    click.echo(f"Added {who} to {group}")


@groups.command("remove-member")
@home_option
@click.argument("client_id")
@click.argument("code")
@click.argument("member")
def groups_remove_member(
    home: Path | None, client_id: str, code: str, member: str
) -> None:
    """Remove a member from a local group."""
    ident, group, who = (
        parse_client_id(client_id),
        _group(code),
        parse_client_id(member),
    )
    run(
        config_of(home),
        lambda db: local_groups.remove_group_member(
            db, actor(), ident, group, who, now=now()
        ),
    )
    click.echo(f"Removed {who} from {group}")
