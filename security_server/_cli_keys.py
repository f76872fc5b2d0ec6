"""``jplink ss token|keys|csr|certs``: the software token, its keys, CSRs
and certificates.

Part of :mod:`.cli` (attached to ``jplink ss`` there). Commands that need
private keys ask for the PIN themselves (hidden prompt, or ``--pin-file``)
and forget it on exit.
"""

from __future__ import annotations

from pathlib import Path

import click

from jplink.errors import InvalidRequest
from jplink.identifiers import parse_client_id
from jplink.security.certs import CertProfile
from jplink.security.keys import KeyType
from jplink.storage import Database

from . import certificates, csrs, identity, keys, softtoken
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

__all__ = ["certs_group", "csr_group", "keys_group", "token"]


# --- token -------------------------------------------------------------------


@click.group()
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


@click.group("keys")
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


@click.group("csr")
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


@click.group("certs")
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
