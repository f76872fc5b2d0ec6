"""``jplink ss clients set-connection-type|is-cert``: information systems over HTTPS."""

from __future__ import annotations

from pathlib import Path

import click

from jplink.identifiers import parse_client_id

from ._cli_support import actor, config_of, echo_json, home_option, now, run
from .exchange_is_auth import (
    ConnectionType,
    add_is_certificate,
    delete_is_certificate,
    list_is_certificates,
    set_connection_type,
)

__all__ = ["is_cert", "set_connection_type_command"]

_TYPES = {
    "http": ConnectionType.HTTP,
    "https-no-auth": ConnectionType.HTTPS_NO_AUTH,
    "https": ConnectionType.HTTPS,
}


@click.command("set-connection-type")
@home_option
@click.argument("client_id")
@click.argument("connection_type", type=click.Choice(sorted(_TYPES)))
def set_connection_type_command(
    home: Path | None, client_id: str, connection_type: str
) -> None:
    """How the client's information systems must connect to the client proxy.

    http: plain HTTP or HTTPS; https-no-auth: HTTPS (port 8443) required;
    https: HTTPS with an IS certificate registered with ``is-cert add``.
    """
    ident = parse_client_id(client_id)
    wanted = _TYPES[connection_type]
    result = run(
        config_of(home),
        lambda db: set_connection_type(db, actor(), ident, wanted, now=now()),
    )
    echo_json({"client": str(ident), "connection_type": result.value})


@click.group("is-cert")
def is_cert() -> None:
    """TLS certificates of a client's information systems."""


@is_cert.command("add")
@home_option
@click.argument("client_id")
@click.argument(
    "cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def is_cert_add(home: Path | None, client_id: str, cert_file: Path) -> None:
    """Register an IS certificate (PEM or DER file) for a client."""
    ident = parse_client_id(client_id)
    data = cert_file.read_bytes()
    echo_json(
        run(
            config_of(home),
            lambda db: add_is_certificate(db, actor(), ident, data, now=now()),
        )
    )


@is_cert.command("list")
@home_option
@click.argument("client_id")
def is_cert_list(home: Path | None, client_id: str) -> None:
    """List a client's IS certificates (JSON)."""
    ident = parse_client_id(client_id)
    echo_json(run(config_of(home), lambda db: list_is_certificates(db, ident)))


@is_cert.command("delete")
@home_option
@click.argument("client_id")
@click.argument("sha256")
def is_cert_delete(home: Path | None, client_id: str, sha256: str) -> None:
    """Remove a client's IS certificate by its SHA-256 (hex)."""
    ident = parse_client_id(client_id)
    run(
        config_of(home),
        lambda db: delete_is_certificate(db, actor(), ident, sha256, now=now()),
    )
    echo_json({"client": str(ident), "deleted": sha256.strip().lower()})
