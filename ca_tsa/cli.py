"""``jplink ca``: create a CA home, issue, revoke, list, serve.

Every command takes ``--home`` (default: :func:`jplink.config.resolve_home`
for ``ca``) and calls the same :mod:`ca_tsa.service` functions as the
enrolment API; errors (``JPLinkError``) are rendered once by the root command.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, TypeVar

import click
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from jplink.cli_support import run_with_database, utc_now
from jplink.config import resolve_home
from jplink.security.certs import MemberSubject
from jplink.storage import Database

from . import service
from .config import CaTsaConfig, load_ca_config
from .home import init_ca_home, load_ca_material, read_api_key
from .models import MIGRATIONS
from .repositories import CertificateRecord

__all__ = ["ca"]

T = TypeVar("T")


def _home(value: str | None) -> Path:
    return resolve_home("ca", value)


home_option = click.option(
    "--home",
    "home",
    type=click.Path(file_okay=False),
    default=None,
    help="CA home (default: $JPLINK_CA_HOME, $JPLINK_HOME/ca, /var/lib/jplink/ca).",
)


def _with_db(config: CaTsaConfig, work: Callable[[Database], Awaitable[T]]) -> T:
    return run_with_database(config.db_url, MIGRATIONS, work)


@click.group("ca")
def ca() -> None:
    """Certificate authority, OCSP responder and time-stamping authority."""


@ca.command("init")
@home_option
@click.option("--name", default="JP-LINK Test CA", show_default=True, help="CA name.")
@click.option("--intermediate/--no-intermediate", default=False, show_default=True)
@click.option(
    "--key-type", type=click.Choice(["rsa", "ec"]), default="rsa", show_default=True
)
@click.option("--ocsp-url", default=None, help="OCSP URL for issued certificates.")
@click.option(
    "--api-port", type=click.IntRange(1, 65535), default=8888, show_default=True
)
@click.option(
    "--tsa-port", type=click.IntRange(1, 65535), default=8899, show_default=True
)
@click.option(
    "--validity-days", type=click.IntRange(1), default=3650, show_default=True
)
@click.option("--database-url", default=None, help="SQLAlchemy URL (default SQLite).")
@click.option("--force", is_flag=True, help="Replace an existing CA in this home.")
def init_cmd(
    home: str | None,
    name: str,
    intermediate: bool,
    key_type: str,
    ocsp_url: str | None,
    api_port: int,
    tsa_port: int,
    validity_days: int,
    database_url: str | None,
    force: bool,
) -> None:
    """Create a CA home: root (and intermediate) CA, OCSP and TSA keys, API key."""
    config = init_ca_home(
        _home(home),
        name=name,
        intermediate=intermediate,
        key_type="ec" if key_type == "ec" else "rsa",
        ocsp_url=ocsp_url,
        api_port=api_port,
        tsa_port=tsa_port,
        now=utc_now(),
        validity_days=validity_days,
        force=force,
        database_url=database_url,
    )
    material = load_ca_material(config)
    fingerprint = material.root_cert.fingerprint(hashes.SHA256()).hex(":").upper()
    click.echo(f"CA home:       {config.home}")
    click.echo(f"Issuing CA:    {material.ca_cert.subject.rfc4514_string()}")
    click.echo(f"Root SHA-256:  {fingerprint}")
    click.echo(f"OCSP URL:      {config.ocsp.url}")
    click.echo(f"API key file:  {config.api.api_key_file}")


@ca.command("issue")
@home_option
@click.option(
    "--csr", "csr_file", type=click.File("rb"), required=True, help="PKCS#10."
)
@click.option("--profile", type=click.Choice(["auth", "sign"]), required=True)
@click.option("--instance", required=True, help="X-Road instance, e.g. JP.")
@click.option("--member-class", required=True)
@click.option("--member-code", required=True)
@click.option("--member-name", required=True, help="Organisation name (O).")
@click.option("--server-code", default=None, help="Security server code (auth).")
@click.option("--days", type=click.IntRange(1), default=None, help="Validity override.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), default=None)
def issue_cmd(
    home: str | None,
    csr_file: IO[bytes],
    profile: str,
    instance: str,
    member_class: str,
    member_code: str,
    member_name: str,
    server_code: str | None,
    days: int | None,
    out: str | None,
) -> None:
    """Issue a certificate for a CSR (PEM certificate to --out or stdout)."""
    config = load_ca_config(_home(home))
    material = load_ca_material(config)
    request = service.EnrolmentRequest(
        csr=csr_file.read(),
        profile=service.parse_profile(profile),
        subject=MemberSubject(
            instance=instance,
            member_class=member_class,
            member_code=member_code,
            member_name=member_name,
            server_code=server_code,
        ),
        validity_days=days,
    )
    record = _with_db(
        config,
        lambda db: service.issue_certificate(
            db, config, material, request, now=utc_now()
        ),
    )
    pem = record.certificate().public_bytes(Encoding.PEM)
    if out is None:
        click.echo(pem.decode(), nl=False)
    else:
        Path(out).write_bytes(pem)
    click.echo(f"serial {record.serial_hex} {record.subject}", err=True)


@ca.command("revoke")
@home_option
@click.option("--serial", required=True, help="Serial number in hex.")
@click.option(
    "--reason",
    type=click.Choice(sorted(service.REVOCATION_REASONS)),
    default="unspecified",
    show_default=True,
)
def revoke_cmd(home: str | None, serial: str, reason: str) -> None:
    """Revoke an issued certificate (final; OCSP answers 'revoked' from now on)."""
    config = load_ca_config(_home(home))
    number = service.parse_serial(serial)
    flag = service.parse_reason(reason)
    record = _with_db(
        config, lambda db: service.revoke_certificate(db, number, flag, now=utc_now())
    )
    click.echo(f"revoked {record.serial_hex} ({reason}) at {record.revoked_at}")


def _row(rec: CertificateRecord) -> dict[str, str | None]:
    return {
        "serial": rec.serial_hex,
        "profile": rec.profile.value,
        "status": rec.status.value,
        "member_id": rec.member_id,
        "server_code": rec.server_code,
        "subject": rec.subject,
        "not_after": rec.not_after.isoformat(),
        "revoked_at": rec.revoked_at.isoformat() if rec.revoked_at else None,
        "revocation_reason": rec.reason.value if rec.reason else None,
    }


@ca.command("list")
@home_option
@click.option(
    "--member-id", default=None, help="Only this member (INSTANCE/CLASS/CODE)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(home: str | None, member_id: str | None, as_json: bool) -> None:
    """List issued certificates with their status, newest first."""
    config = load_ca_config(_home(home))
    records = _with_db(
        config, lambda db: service.list_certificates(db, member_id=member_id)
    )
    rows = [_row(r) for r in records]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['serial']:<40} {row['profile']:<4} {row['status']:<7} "
            f"{row['not_after']}  {row['subject']}"
        )


@ca.command("serve")
@home_option
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
def serve_cmd(home: str | None, workers: int) -> None:
    """Serve the enrolment API + OCSP and the TSA until SIGTERM."""
    from .server import run_server

    config = load_ca_config(_home(home))
    # Fail now, with a clear message, rather than inside a worker.
    load_ca_material(config)
    read_api_key(config)
    code = run_server(config, workers=workers)
    if code:
        raise click.exceptions.Exit(code)
