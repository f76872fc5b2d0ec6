"""``jplink central ...``: the operator's commands.

Every command takes ``--home`` (see :func:`jplink.config.resolve_home`), loads
``<home>/central.toml`` strictly and calls the same service functions as the
admin API; errors are rendered once, by the root command (``jplink/cli.py``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import click
from aiohttp import web

from jplink.cli_support import cli_actor, echo_json, utc_now
from jplink.clients.ca import AiohttpCaEnrolmentClient
from jplink.config import resolve_home
from jplink.errors import ConfigurationError, InvalidRequest
from jplink.serving import stop_on_signals
from jplink.storage import Database

from . import apikeys, cert_requests, member_requests, registry, servers
from . import serialize as ser
from ._cli_support import config_of, home_option, run
from .app import make_app, make_registration_app, read_ca_api_key
from .confgen.cli import conf
from .config import CONFIG_FILE, CentralConfig, load_central_config
from .management_cli import mgmt
from .member_requests import RequestStatus
from .publisher import start_publisher

__all__ = ["central"]

_DEFAULT_TOML = """\
# JP-LINK central server. Unknown keys are errors.
# database_url = "postgresql://central@localhost/central"   # default: central.db here

[admin]
host = "127.0.0.1"
port = 4000

[registration]
host = "127.0.0.1"
port = 4001

[ca]
# url = "http://127.0.0.1:8888"
# api_key_file = "secrets/ca-api-key"

[publisher]
host = "127.0.0.1"
port = 80
# source_urls = ["http://cs.example.jp"]
"""


@click.group()
def central() -> None:
    """Central server: registry, requests and approvals, admin API."""


@central.command()
@home_option
@click.option("--instance", required=True, help="X-Road instance identifier, e.g. JP.")
@click.option(
    "--member-class",
    "member_classes",
    multiple=True,
    required=True,
    metavar="CODE=DESCRIPTION",
    help="A member class (repeatable), e.g. COM=Companies.",
)
def init(home: Path | None, instance: str, member_classes: tuple[str, ...]) -> None:
    """Create the instance and print the first (system administrator) API key once."""
    classes: dict[str, str] = {}
    for item in member_classes:
        code, sep, description = item.partition("=")
        if not sep or not code:
            raise InvalidRequest(f"--member-class {item!r}: use CODE=DESCRIPTION")
        classes[code] = description
    path = resolve_home("central", home)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not (path / CONFIG_FILE).exists():
        (path / CONFIG_FILE).write_text(_DEFAULT_TOML)
    config = load_central_config(path)

    async def work(db: Database) -> str:
        now = utc_now()
        await registry.initialize(
            db, cli_actor(), instance=instance, member_classes=classes, now=now
        )
        _info, key = await apikeys.create_api_key(
            db,
            cli_actor(),
            name="admin",
            role=apikeys.Role.SYSTEM_ADMINISTRATOR,
            now=now,
        )
        return key

    key = run(config, work)
    click.echo(f"Initialised instance {instance} in {path}")
    click.echo("System administrator API key (shown once, store it now):")
    click.echo(key)


@central.group()
def members() -> None:
    """Members and their subsystems."""


@members.command("list")
@home_option
def members_list(home: Path | None) -> None:
    """List members with their subsystems (JSON)."""
    found = run(config_of(home), registry.list_members)
    echo_json([ser.member_json(m) for m in found])


@central.group()
def subsystems() -> None:
    """Subsystems of members."""


@subsystems.command("list")
@home_option
def subsystems_list(home: Path | None) -> None:
    """List subsystem identifiers, one per line."""
    for member in run(config_of(home), registry.list_members):
        for sub in member.subsystems:
            click.echo(str(sub))


@central.group("servers")
def servers_group() -> None:
    """Security servers."""


@servers_group.command("list")
@home_option
def servers_list(home: Path | None) -> None:
    """List security servers with auth-cert hashes and clients (JSON)."""
    found = run(config_of(home), servers.list_security_servers)
    echo_json([ser.server_json(s) for s in found])


@central.group()
def requests() -> None:
    """Member-code and certificate requests."""


_KIND = click.Choice(["member", "certificate"])


@requests.command("list")
@home_option
@click.option("--kind", type=_KIND, default="member", show_default=True)
@click.option("--status", type=click.Choice([s.value for s in RequestStatus]))
def requests_list(home: Path | None, kind: str, status: str | None) -> None:
    """List requests (JSON), optionally of one status."""
    wanted = RequestStatus(status) if status else None

    async def work(db: Database) -> list[dict[str, Any]]:
        if kind == "member":
            found = await member_requests.list_member_requests(db, status=wanted)
            return [ser.member_request_json(r) for r in found]
        certs = await cert_requests.list_certificate_requests(db, status=wanted)
        return [ser.cert_request_json(r) for r in certs]

    echo_json(run(config_of(home), work))


async def _approve_certificate(
    config: CentralConfig, db: Database, request_id: int
) -> dict[str, Any]:
    if not config.ca.url:
        raise ConfigurationError(f"No CA is configured ([ca] url in {CONFIG_FILE})")
    key = read_ca_api_key(config)
    async with aiohttp.ClientSession() as session:
        ca = AiohttpCaEnrolmentClient(
            session, config.ca.url, key, timeout=config.ca.timeout_seconds
        )
        view = await cert_requests.approve_certificate_request(
            db, cli_actor(), request_id, ca, now=utc_now()
        )
    return ser.cert_request_json(view)


@requests.command("approve")
@home_option
@click.argument("kind", type=_KIND)
@click.argument("request_id", type=click.IntRange(min=1))
@click.option("--member-code", help="Member code to assign (member requests).")
def requests_approve(
    home: Path | None, kind: str, request_id: int, member_code: str | None
) -> None:
    """Approve a member-code request or a certificate request."""
    config = config_of(home)

    async def work(db: Database) -> dict[str, Any]:
        if kind == "member":
            info = await member_requests.approve_member_request(
                db, cli_actor(), request_id, member_code=member_code, now=utc_now()
            )
            return ser.member_json(info)
        return await _approve_certificate(config, db, request_id)

    echo_json(run(config, work))


@requests.command("decline")
@home_option
@click.argument("kind", type=_KIND)
@click.argument("request_id", type=click.IntRange(min=1))
@click.option("--reason", required=True, help="Shown to the requester.")
def requests_decline(
    home: Path | None, kind: str, request_id: int, reason: str
) -> None:
    """Decline a request with a reason the requester can read."""

    async def work(db: Database) -> dict[str, Any]:
        if kind == "member":
            view = await member_requests.decline_member_request(
                db, cli_actor(), request_id, reason, now=utc_now()
            )
            return ser.member_request_json(view)
        cview = await cert_requests.decline_certificate_request(
            db, cli_actor(), request_id, reason, now=utc_now()
        )
        return ser.cert_request_json(cview)

    echo_json(run(config_of(home), work))


central.add_command(mgmt)


@central.group("api-key")
def api_key() -> None:
    """Admin API keys."""


@api_key.command("create")
@home_option
@click.option("--name", required=True)
@click.option(
    "--role", required=True, type=click.Choice([r.value for r in apikeys.Role])
)
def api_key_create(home: Path | None, name: str, role: str) -> None:
    """Create a key; it is printed once and stored only hashed."""

    async def work(db: Database) -> tuple[apikeys.ApiKeyInfo, str]:
        return await apikeys.create_api_key(
            db, cli_actor(), name=name, role=apikeys.Role(role), now=utc_now()
        )

    info, key = run(config_of(home), work)
    click.echo(f"API key {info.key_id} ({info.role.value}), shown once:")
    click.echo(key)


@api_key.command("revoke")
@home_option
@click.argument("key_id")
def api_key_revoke(home: Path | None, key_id: str) -> None:
    """Revoke a key by its id."""

    async def work(db: Database) -> apikeys.ApiKeyInfo:
        return await apikeys.revoke_api_key(db, cli_actor(), key_id, now=utc_now())

    info = run(config_of(home), work)
    click.echo(f"Revoked API key {info.key_id}")


@api_key.command("list")
@home_option
def api_key_list(home: Path | None) -> None:
    """List keys (never the keys themselves) as JSON."""
    echo_json(
        [ser.api_key_json(k) for k in run(config_of(home), apikeys.list_api_keys)]
    )


async def _serve(config: CentralConfig) -> None:
    stop = stop_on_signals()
    runners = []
    try:
        for app, host, port in (
            (make_app(config), config.admin.host, config.admin.port),
            (
                make_registration_app(config),
                config.registration.host,
                config.registration.port,
            ),
        ):
            runner = web.AppRunner(app)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port).start()
            click.echo(f"Listening on http://{host}:{port}")
        pub = config.publisher
        try:
            runners.append(await start_publisher(config))
            click.echo(f"Publishing configuration on http://{pub.host}:{pub.port}")
        except OSError as exc:
            click.echo(
                f"Configuration publisher NOT started: cannot listen on "
                f"{pub.host}:{pub.port}: {exc.strerror} (set [publisher] port)",
                err=True,
            )
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


@central.command()
@home_option
def serve(home: Path | None) -> None:
    """Run the admin API, registration endpoint and publisher until SIGTERM
    or SIGINT."""
    config = config_of(home)
    asyncio.run(_serve(config))


central.add_command(conf)
