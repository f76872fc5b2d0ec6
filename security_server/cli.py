"""``jplink ss ...``: the security server's operator commands.

Every command takes ``--home`` (see :func:`jplink.config.resolve_home`), loads
``<home>/ss.toml`` strictly and calls the same service functions the admin API
will; errors are rendered once, by the root command (``jplink/cli.py``).

The token's login state lives in process memory, so a CLI command that needs
private keys (``keys generate``, ``csr create``, ``token change-pin``) asks for
the PIN itself (hidden prompt, or ``--pin-file``) and forgets it on exit.
``token login`` only checks the PIN; the long-running server will hold it.
"""

from __future__ import annotations

from pathlib import Path

import click

from jplink.config import resolve_home
from jplink.identifiers import parse_client_id
from jplink.storage import Database

from . import confclient, identity, softtoken
from ._cli_admin import api_key
from ._cli_client_tls import is_cert, set_connection_type_command
from ._cli_keys import certs_group, csr_group, keys_group, token
from ._cli_log import log
from ._cli_onboarding import (
    certs_register,
    clients_register,
    clients_unregister,
    csr_fetch,
    csr_submit,
)
from ._cli_services import acl, clients_group, groups, services
from ._cli_support import (
    actor,
    config_of,
    echo_json,
    home_option,
    now,
    pin_file_option,
    read_pin,
    run,
)
from .admin import Role, create_api_key
from .config import CONFIG_FILE, load_ss_config

__all__ = ["ss"]

_DEFAULT_TOML = """\
# JP-LINK security server. Unknown keys are errors; see docs/security-server.md.
# database_url = "postgresql://ss@localhost/ss"   # default: ss.db here
# token_dir = "token"

[client_proxy]
http_port = 8080
https_port = 8443

[server_proxy]
port = 5500

[message_log]
mode = "full"
"""


@click.group()
def ss() -> None:
    """Security server: token, keys, certificates, clients, services, rights."""


@ss.command()
@home_option
@click.option(
    "--anchor",
    "anchor_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The configuration anchor XML (check its hash with the operator first).",
)
@click.option("--owner", required=True, help="Owner member, e.g. MEMBER:JP/COM/1111.")
@click.option("--owner-name", required=True, help="The owner's registered name.")
@click.option("--server-code", required=True, help="This security server's code.")
def init(
    home: Path | None, anchor_file: Path, owner: str, owner_name: str, server_code: str
) -> None:
    """Initialise the server: anchor, owner member and server code."""
    path = resolve_home("ss", home)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not (path / CONFIG_FILE).exists():
        (path / CONFIG_FILE).write_text(_DEFAULT_TOML)
    config = load_ss_config(path)
    owner_id = parse_client_id(owner)
    anchor = anchor_file.read_bytes()

    async def work(db: Database) -> tuple[identity.ServerInfo, str]:
        info = await identity.initialize(
            db,
            config,
            actor(),
            anchor=anchor,
            owner=owner_id,
            owner_name=owner_name,
            server_code=server_code,
            now=now(),
        )
        _key_info, key = await create_api_key(
            db,
            actor(),
            name="admin",
            roles=frozenset({Role.SYSTEM_ADMINISTRATOR}),
            now=now(),
        )
        return info, key

    info, key = run(config, work)
    click.echo(f"Initialised {info.server_id} in {path}")
    click.echo(f"Anchor SHA-256: {info.anchor_sha256}")
    click.echo("System administrator API key (shown once, store it now):")
    click.echo(key)


@ss.command()
@home_option
def status(home: Path | None) -> None:
    """Show the server identity and token state (JSON)."""

    async def work(db: Database) -> dict[str, object]:
        server = await identity.get_identity(db)
        token = await softtoken.get_token(db)
        return {"server": server, "token": token}

    echo_json(run(config_of(home), work))


# --- global configuration ------------------------------------------------------


@ss.group()
def conf() -> None:
    """The global configuration."""


@conf.command("download")
@home_option
def conf_download(home: Path | None) -> None:
    """Download and verify the global configuration from the anchor's sources."""
    config = config_of(home)
    info = run(
        config,
        lambda db: confclient.download_global_configuration(
            db, config, actor(), now=now()
        ),
    )
    echo_json(info)


@conf.command("status")
@home_option
def conf_status(home: Path | None) -> None:
    """Show the saved global configuration's state (JSON)."""
    echo_json(confclient.global_configuration_status(config_of(home), now=now()))


ss.add_command(token)
ss.add_command(keys_group)
ss.add_command(csr_group)
ss.add_command(certs_group)
ss.add_command(clients_group)
ss.add_command(api_key)
csr_group.add_command(csr_submit)
csr_group.add_command(csr_fetch)
certs_group.add_command(certs_register)
clients_group.add_command(clients_register)
clients_group.add_command(clients_unregister)
clients_group.add_command(set_connection_type_command)
clients_group.add_command(is_cert)
ss.add_command(services)
ss.add_command(acl)
ss.add_command(groups)
ss.add_command(log)


@ss.command("worker", hidden=True)
@home_option
def worker_command(home: Path | None) -> None:
    """A proxy worker process, started by ``serve`` ([exchange] workers).

    Reads the token PIN from the first line of stdin and serves the client
    and server proxies on the shared ports until stdin closes or SIGTERM.
    """
    from .workers import run_worker

    run_worker(config_of(home))


@ss.command("serve")
@home_option
@pin_file_option
def serve_command(home: Path | None, pin_file: Path | None) -> None:
    """Run the admin API, and the client proxy, the server proxy (mutual TLS),
    OCSP for peers and the OCSP refresher, in one process.

    The admin API starts at once; the exchange starts once the token is
    logged in and a registered authentication certificate has fresh OCSP.
    The PIN comes from --pin-file, else ``[exchange] pin_file`` in ss.toml,
    else a login through the admin API (kept in this process's memory only).
    """
    from .serve import run_server

    config = config_of(home)
    pin = read_pin(pin_file) if pin_file is not None else None
    run_server(config, pin=pin)
