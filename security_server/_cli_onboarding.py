"""``jplink ss csr submit|fetch``, ``certs register``, ``clients register|unregister``.

Thin commands over :mod:`security_server.registration`, attached to the
existing ``csr``, ``certs`` and ``clients`` groups by ``cli.py``. Each prints
JSON; errors are rendered once by the root command (``CODE: message``, exit
1). The requester token of a CSR request stays in the database: it is never
printed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
import click

from jplink.storage import Database

from . import registration
from ._cli_support import (
    actor,
    client_arg,
    config_of,
    echo_json,
    home_option,
    now,
    pin_file_option,
    read_pin,
    run,
)
from .config import SecurityServerConfig

__all__ = [
    "certs_register",
    "clients_register",
    "clients_unregister",
    "csr_fetch",
    "csr_submit",
]

T = TypeVar("T")


def _run_http(
    config: SecurityServerConfig,
    work: Callable[[Database, aiohttp.ClientSession], Awaitable[T]],
) -> T:
    async def with_session(db: Database) -> T:
        async with aiohttp.ClientSession() as session:
            return await work(db, session)

    return run(config, with_session)


@click.command("submit")
@home_option
@click.argument("csr_id", type=int)
@click.option(
    "--central",
    "central_url",
    required=True,
    help="The central server's registration URL, e.g. http://cs.example.jp:4001.",
)
def csr_submit(home: Path | None, csr_id: int, central_url: str) -> None:
    """Send a CSR to the central server for approval (JSON: request_id, status)."""
    config = config_of(home)
    result = _run_http(
        config,
        lambda db, session: registration.submit_csr(
            db,
            csr_id,
            central_url=central_url,
            session=session,
            actor=actor(),
            now=now(),
            timeout=config.timeouts.read_seconds,
        ),
    )
    echo_json({"request_id": result.request_id, "status": result.status})


@click.command("fetch")
@home_option
@click.argument("csr_id", type=int)
def csr_fetch(home: Path | None, csr_id: int) -> None:
    """Ask for a sent CSR's state; import the certificate once issued (JSON)."""
    config = config_of(home)
    result = _run_http(
        config,
        lambda db, session: registration.fetch_certificate(
            db,
            csr_id,
            session=session,
            actor=actor(),
            now=now(),
            timeout=config.timeouts.read_seconds,
        ),
    )
    echo_json(result)


@click.command("register")
@home_option
@pin_file_option
@click.argument("sha256")
@click.option(
    "--address",
    required=True,
    help="This server's address for peers: HOST or HOST:PORT.",
)
def certs_register(
    home: Path | None, pin_file: Path | None, sha256: str, address: str
) -> None:
    """Send authCertReg for an auth certificate to the central server (JSON)."""
    config = config_of(home)
    pin = read_pin(pin_file)
    result = _run_http(
        config,
        lambda db, session: registration.register_auth_cert(
            db,
            config,
            sha256,
            address=address,
            pin=pin,
            session=session,
            actor=actor(),
            now=now(),
        ),
    )
    echo_json(result)


@click.command("register")
@home_option
@pin_file_option
@click.argument("client_id")
def clients_register(home: Path | None, pin_file: Path | None, client_id: str) -> None:
    """Send clientReg through the running client proxy (JSON)."""
    config = config_of(home)
    pin = read_pin(pin_file)
    result = _run_http(
        config,
        lambda db, session: registration.register_client(
            db,
            config,
            client_arg(client_id),
            pin=pin,
            session=session,
            actor=actor(),
            now=now(),
        ),
    )
    echo_json(result)


@click.command("unregister")
@home_option
@click.argument("client_id")
def clients_unregister(home: Path | None, client_id: str) -> None:
    """Send clientDeletion through the running client proxy (JSON)."""
    config = config_of(home)
    result = _run_http(
        config,
        lambda db, session: registration.unregister_client(
            db,
            config,
            client_arg(client_id),
            session=session,
            actor=actor(),
            now=now(),
        ),
    )
    echo_json(result)
