"""``jplink central conf ...``: generate, show, anchors and signing keys.

Registered on the ``central`` group by :mod:`central_server.cli`; each command
calls :mod:`central_server.confgen.service` or :mod:`.keys`, nothing more.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import click
from cryptography.hazmat.primitives.serialization import Encoding

from jplink.cli_support import cli_actor, echo_json, utc_now
from jplink.errors import StorageError
from jplink.storage import Database

from .._cli_support import config_of, run
from .._cli_support import home_option as _home
from . import keys as conf_keys
from .build import GeneratedConfiguration
from .service import generate_anchor, generate_configuration

__all__ = ["conf"]

_external = click.option(
    "--external",
    is_flag=True,
    help="The external configuration (externalconf, federation) instead.",
)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StorageError(f"Cannot write {path}: {exc.strerror}") from exc


def _key_json(info: conf_keys.SigningKeyInfo) -> dict[str, object]:
    der = info.cert.public_bytes(Encoding.DER)
    return {
        "keyId": info.key_id,
        "sourceType": info.source_type.value,
        "active": info.active,
        "certificateSha256": hashlib.sha256(der).hexdigest(),
        "subject": info.cert.subject.rfc4514_string(),
        "createdAt": info.created_at.isoformat(),
        "activatedAt": info.activated_at.isoformat() if info.activated_at else None,
    }


@click.group()
def conf() -> None:
    """Global configuration: generation, anchors, signing keys."""


@conf.command()
@_home
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the generation here (internalconf.mime, externalconf.mime "
    "with their Content-Type line, and V6/<id>/*.xml).",
)
def generate(home: Path | None, out: Path | None) -> None:
    """Generate and sign the configuration from the registry once."""
    config = config_of(home)

    async def work(db: Database) -> GeneratedConfiguration:
        return await generate_configuration(db, config, now=utc_now())

    gen = run(config, work)
    if out is not None:
        for name, directory in (
            ("internalconf", gen.internal),
            ("externalconf", gen.external),
        ):
            head = f"Content-Type: {directory.content_type}\r\n\r\n".encode("ascii")
            _write_atomic(out / f"{name}.mime", head + directory.body)
        for location, data in gen.files.items():
            _write_atomic(out / location.lstrip("/"), data)
    echo_json(
        {
            "version": gen.version_id,
            "expireDate": gen.expire_date.isoformat(),
            "files": {
                loc: hashlib.sha512(data).hexdigest() for loc, data in gen.files.items()
            },
        },
        ensure_ascii=True,
    )


@conf.command()
@_home
@click.option("--private", "private", is_flag=True, help="private-params.xml")
def show(home: Path | None, private: bool) -> None:
    """Print shared-params.xml (or private-params.xml) of the registry now."""
    config = config_of(home)

    async def work(db: Database) -> GeneratedConfiguration:
        return await generate_configuration(db, config, now=utc_now())

    gen = run(config, work)
    name = "private-params.xml" if private else "shared-params.xml"
    data = next(d for loc, d in gen.files.items() if loc.endswith("/" + name))
    click.echo(data.decode("utf-8"), nl=False)


@conf.command()
@_home
@_external
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The anchor file to write.",
)
def anchor(home: Path | None, external: bool, out: Path) -> None:
    """Write the configuration anchor with every current verification cert."""
    config = config_of(home)

    async def work(db: Database) -> bytes:
        return await generate_anchor(db, config, external=external, now=utc_now())

    data = run(config, work)
    _write_atomic(out, data)
    click.echo(f"Wrote {out}")
    click.echo(f"SHA-256 (compare out of band): {hashlib.sha256(data).hexdigest()}")


@conf.group("keys")
def keys_group() -> None:
    """Configuration-signing keys (add -> new anchor -> activate -> remove)."""


@keys_group.command("add")
@_home
@_external
def keys_add(home: Path | None, external: bool) -> None:
    """Add a signing key (standby; the first one of its kind is active)."""
    config = config_of(home)
    source = (
        conf_keys.SourceType.EXTERNAL if external else conf_keys.SourceType.INTERNAL
    )

    async def work(db: Database) -> conf_keys.SigningKeyInfo:
        return await conf_keys.add_signing_key(
            db, cli_actor(), config.home, source, now=utc_now()
        )

    echo_json(_key_json(run(config, work)), ensure_ascii=True)


@keys_group.command("activate")
@_home
@click.argument("key_id")
def keys_activate(home: Path | None, key_id: str) -> None:
    """Make a key the signing key (distribute an anchor with it first)."""
    config = config_of(home)

    async def work(db: Database) -> conf_keys.SigningKeyInfo:
        return await conf_keys.activate_signing_key(
            db, cli_actor(), key_id, now=utc_now()
        )

    echo_json(_key_json(run(config, work)), ensure_ascii=True)


@keys_group.command("remove")
@_home
@click.argument("key_id")
def keys_remove(home: Path | None, key_id: str) -> None:
    """Remove a standby key and delete its key file."""
    config = config_of(home)

    async def work(db: Database) -> conf_keys.SigningKeyInfo:
        return await conf_keys.remove_signing_key(
            db, cli_actor(), config.home, key_id, now=utc_now()
        )

    info = run(config, work)
    click.echo(f"Removed configuration signing key {info.key_id}")


@keys_group.command("list")
@_home
def keys_list(home: Path | None) -> None:
    """List the signing keys (JSON; never the private keys)."""
    found = run(config_of(home), conf_keys.list_signing_keys)
    echo_json([_key_json(k) for k in found], ensure_ascii=True)
