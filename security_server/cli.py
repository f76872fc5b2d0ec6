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
from jplink.errors import InvalidRequest
from jplink.identifiers import parse_client_id
from jplink.security.certs import CertProfile
from jplink.security.keys import KeyType
from jplink.storage import Database

from . import certificates, confclient, csrs, identity, keys, softtoken
from ._cli_admin import api_key
from ._cli_client_tls import is_cert, set_connection_type_command
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


# --- token -------------------------------------------------------------------


@ss.group()
def token() -> None:
    """The software token (PIN-protected key files)."""


@token.command("init")
@home_option
@pin_file_option
def token_init(home: Path | None, pin_file: Path | None) -> None:
    """Create the token with a new PIN (asked twice unless --pin-file)."""
    pin = read_pin(pin_file, prompt="New token PIN", confirm=True)

    async def work(db: Database) -> softtoken.TokenInfo:
        return await softtoken.init_token(db, actor(), pin=pin, now=now())

    info = run(config_of(home), work)
    click.echo(f"Token {info.label} initialised")


@token.command("login")
@home_option
@pin_file_option
def token_login(home: Path | None, pin_file: Path | None) -> None:
    """Check the PIN (CLI commands ask for it again when they need keys)."""
    pin = read_pin(pin_file)
    run(config_of(home), lambda db: softtoken.login(db, pin))
    click.echo("PIN correct. The token is unlocked for this command only.")


@token.command("logout")
@home_option
def token_logout(home: Path | None) -> None:
    """Forget the PIN (the CLI never keeps it between commands)."""
    config_of(home)
    softtoken.TokenLogin().logout()
    click.echo("Logged out: no PIN is held by the CLI.")


@token.command("change-pin")
@home_option
@pin_file_option
@click.option(
    "--new-pin-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Read the new PIN from this file instead of prompting.",
)
def token_change_pin(
    home: Path | None, pin_file: Path | None, new_pin_file: Path | None
) -> None:
    """Re-encrypt every key with a new PIN."""
    config = config_of(home)
    old = read_pin(pin_file, prompt="Current token PIN")
    new = read_pin(new_pin_file, prompt="New token PIN", confirm=True)

    async def work(db: Database) -> None:
        await softtoken.change_pin(
            db, config.token_dir, actor(), old_pin=old, new_pin=new, now=now()
        )

    run(config, work)
    click.echo("PIN changed")


# --- keys and CSRs -------------------------------------------------------------


@ss.group("keys")
def keys_group() -> None:
    """Authentication and signing keys on the token."""


@keys_group.command("generate")
@home_option
@pin_file_option
@click.option(
    "--usage", required=True, type=click.Choice([p.value for p in CertProfile])
)
@click.option("--member", default=None, help="The member a sign key signs for.")
@click.option(
    "--type",
    "key_type",
    type=click.Choice([t.value for t in KeyType]),
    default=KeyType.RSA.value,
    show_default=True,
    help="rsa (2048 bits) or ec (P-256).",
)
@click.option("--label", default="", help="Free text shown in listings.")
def keys_generate(
    home: Path | None,
    pin_file: Path | None,
    usage: str,
    member: str | None,
    key_type: str,
    label: str,
) -> None:
    """Generate a key; prints its id."""
    config = config_of(home)
    pin = read_pin(pin_file)
    member_id = parse_client_id(member) if member else None

    async def work(db: Database) -> keys.KeyInfo:
        unlocked = await softtoken.login(db, pin)
        return await keys.generate_key(
            db,
            config.token_dir,
            unlocked,
            actor(),
            usage=CertProfile(usage),
            member=member_id,
            key_type=KeyType(key_type),
            label=label,
            now=now(),
        )

    click.echo(run(config, work).key_id)


@keys_group.command("list")
@home_option
def keys_list(home: Path | None) -> None:
    """List keys with their certificates (JSON)."""
    echo_json(run(config_of(home), keys.list_keys))


@keys_group.command("delete")
@home_option
@click.argument("key_id")
def keys_delete(home: Path | None, key_id: str) -> None:
    """Delete a key with its certificates and CSRs."""
    config = config_of(home)
    run(
        config,
        lambda db: keys.delete_key(db, config.token_dir, actor(), key_id, now=now()),
    )
    click.echo(f"Deleted key {key_id}")


@ss.group("csr")
def csr_group() -> None:
    """Certificate signing requests."""


@csr_group.command("create")
@home_option
@pin_file_option
@click.argument("key_id")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the CSR here (default: print it).",
)
@click.option("--format", "fmt", type=click.Choice(["pem", "der"]), default="pem")
def csr_create(
    home: Path | None, pin_file: Path | None, key_id: str, out: Path | None, fmt: str
) -> None:
    """Make a CSR for a key, with the subject its usage requires."""
    config = config_of(home)
    pin = read_pin(pin_file)

    async def work(db: Database) -> csrs.CsrInfo:
        unlocked = await softtoken.login(db, pin)
        return await csrs.create_csr(
            db, config.token_dir, unlocked, actor(), key_id, now=now()
        )

    info = run(config, work)
    data = info.pem if fmt == "pem" else info.der
    if out is None:
        if fmt == "der":
            raise InvalidRequest("Use --out with --format der")
        click.echo(data.decode("ascii"), nl=False)
    else:
        out.write_bytes(data)
        click.echo(f"Wrote {info.usage.value} CSR for {info.subject} to {out}")


@csr_group.command("list")
@home_option
def csr_list(home: Path | None) -> None:
    """List stored CSRs (JSON)."""
    echo_json(run(config_of(home), csrs.list_csrs))


# --- certificates --------------------------------------------------------------


@ss.group("certs")
def certs_group() -> None:
    """Certificates of the token's keys."""


@certs_group.command("import")
@home_option
@click.argument(
    "cert_file", type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
def certs_import(home: Path | None, cert_file: Path) -> None:
    """Import a certificate (PEM or DER) issued for one of the keys."""
    data = cert_file.read_bytes()
    info = run(
        config_of(home),
        lambda db: certificates.import_certificate(db, actor(), data, now=now()),
    )
    click.echo(f"Imported {info.usage.value} certificate {info.sha256}")


@certs_group.command("list")
@home_option
def certs_list(home: Path | None) -> None:
    """List certificates with status and OCSP state (JSON)."""
    echo_json(run(config_of(home), certificates.list_certificates))


def _set_active(home: Path | None, sha256: str, active: bool) -> None:
    info = run(
        config_of(home),
        lambda db: certificates.set_certificate_active(
            db, actor(), sha256, active=active, now=now()
        ),
    )
    click.echo(f"{'Activated' if active else 'Disabled'} {info.sha256}")


@certs_group.command("activate")
@home_option
@click.argument("sha256")
def certs_activate(home: Path | None, sha256: str) -> None:
    """Activate a certificate (by its SHA-256 or a prefix of it)."""
    _set_active(home, sha256, True)


@certs_group.command("disable")
@home_option
@click.argument("sha256")
def certs_disable(home: Path | None, sha256: str) -> None:
    """Disable a certificate: it is kept but never used."""
    _set_active(home, sha256, False)


@certs_group.command("delete")
@home_option
@click.argument("sha256")
def certs_delete(home: Path | None, sha256: str) -> None:
    """Delete a certificate (the key stays)."""
    run(
        config_of(home),
        lambda db: certificates.delete_certificate(db, actor(), sha256, now=now()),
    )
    click.echo(f"Deleted certificate {sha256}")


@certs_group.command("ocsp-refresh")
@home_option
def certs_ocsp_refresh(home: Path | None) -> None:
    """Fetch OCSP responses for this server's certificates now (JSON report)."""
    from jplink.clients.globalconf import load_saved_configuration

    from .ocsp_refresher import OcspRefresher, RefreshReport

    config = config_of(home)
    instance = identity.read_anchor(config).instance_identifier
    when = now()

    async def work(db: Database) -> RefreshReport:
        refresher = OcspRefresher(
            db,
            config,
            lambda: load_saved_configuration(
                config.globalconf.directory, now=when, instance=instance
            ),
        )
        return await refresher.refresh_now(now=when)

    report = run(config, work)
    echo_json(report.outcomes)
    if report.failed:
        raise click.ClickException(
            f"OCSP refresh failed for {len(report.failed)} certificate(s)"
        )


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
