"""``jplink ss log search|show|export|archive|keystore``: the message log.

Thin wrappers over :mod:`.messagelog_query`, :mod:`.evidence`,
:mod:`.archiver` and :mod:`.logcrypt`; output is JSON (``show --message-file``
writes the body to a file instead of printing bytes; ``keystore`` commands
print key ids and creation times, never key material).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import click

from jplink.errors import ConfigurationError, StorageError
from jplink.storage import Database

from . import archiver, evidence, logcrypt, messagelog_query
from ._cli_support import config_of, echo_json, home_option, now, run
from .messagelog_query import LogQuery, Outcome
from .states import LogDirection

__all__ = ["log"]


def _when(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@click.group("log")
def log() -> None:
    """Message log: search, show, export evidence (ASiC-E), archive, keys."""


@log.command("search")
@home_option
@click.option("--query-id")
@click.option("--client", help="Client identifier, e.g. SUBSYSTEM:JP/COM/1111/app.")
@click.option("--service", help="Service identifier text.")
@click.option("--since", help="ISO 8601 time (UTC if no offset), inclusive.")
@click.option("--until", help="ISO 8601 time (UTC if no offset), exclusive.")
@click.option("--direction", type=click.Choice([d.value for d in LogDirection]))
@click.option("--outcome", type=click.Choice([o.value for o in Outcome]))
@click.option("--before-id", type=int, help="Next page: records older than this id.")
@click.option("--limit", type=click.IntRange(1, messagelog_query.MAX_PAGE), default=100)
def search_command(
    home: Path | None,
    query_id: str | None,
    client: str | None,
    service: str | None,
    since: str | None,
    until: str | None,
    direction: str | None,
    outcome: str | None,
    before_id: int | None,
    limit: int,
) -> None:
    """Search records, newest first (JSON list)."""
    query = LogQuery(
        query_id=query_id,
        client=client,
        service=service,
        since=_when(since),
        until=_when(until),
        direction=None if direction is None else LogDirection(direction),
        outcome=None if outcome is None else Outcome(outcome),
        before_id=before_id,
        limit=limit,
    )

    async def work(db: Database) -> tuple[messagelog_query.LogRecordSummary, ...]:
        return await messagelog_query.search_records(db, query)

    echo_json(run(config_of(home), work))


@log.command("show")
@home_option
@click.argument("record_id", type=int)
@click.option(
    "--message-file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the logged message (if kept) to this file.",
)
def show_command(home: Path | None, record_id: int, message_file: Path | None) -> None:
    """Show one record and its signature (JSON)."""

    async def work(db: Database) -> messagelog_query.LogRecordDetail:
        return await messagelog_query.read_record(
            db, record_id, with_message=message_file is not None
        )

    detail = run(config_of(home), work)
    if message_file is not None and detail.message is not None:
        _write(message_file, detail.message)
    echo_json(detail)


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise StorageError(f"Cannot write {path}: {exc.strerror}") from exc


@log.command("export")
@home_option
@click.argument("record_id", type=int)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="File or directory (default: X-Road's container name, here).",
)
@click.option(
    "--allow-unstamped",
    is_flag=True,
    help="Export a record that has no time-stamp yet (weaker evidence).",
)
def export_command(
    home: Path | None, record_id: int, output: Path | None, allow_unstamped: bool
) -> None:
    """Write a record's ASiC-E container; prints its path and sha256."""

    config = config_of(home)
    decrypt = evidence.decryptor_for(config)

    async def work(db: Database) -> evidence.Evidence:
        return await evidence.export_record(
            db, record_id, allow_unstamped=allow_unstamped, decrypt=decrypt
        )

    found = run(config, work)
    target = output or Path(found.file_name)
    if target.is_dir():
        target = target / found.file_name
    _write(target, found.data)
    echo_json(
        {
            "record_id": found.record_id,
            "file": str(target),
            "sha256": hashlib.sha256(found.data).hexdigest(),
            "timestamped": found.timestamped,
        }
    )


@log.command("archive")
@home_option
def archive_command(home: Path | None) -> None:
    """Run one archiving pass now (JSON: files written, transfers)."""
    config = config_of(home)

    async def work(db: Database) -> archiver.ArchivePass:
        return await archiver.archive_once(
            db, config, now=now(), decrypt=evidence.decryptor_for(config)
        )

    result = run(config, work)
    echo_json(
        {
            "archives": [
                {"file": str(a.path), "records": a.records, "group": a.group}
                for a in result.archives
            ],
            "transferred": [str(p) for p in result.transferred],
            "transfer_failures": [str(p) for p in result.transfer_failures],
        }
    )


@log.group("keystore")
def keystore() -> None:
    """Keys that encrypt logged bodies at rest (AES-256-GCM, file mode 0600)."""


_keystore_option = click.option(
    "--keystore",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keystore file (default: [message_log] encryption_keystore).",
)


def _keystore_path(home: Path | None, path: Path | None) -> Path:
    if path is not None:
        return path
    configured = config_of(home).message_log.encryption_keystore
    if configured is None:
        raise ConfigurationError(
            "No keystore: set [message_log] encryption_keystore in ss.toml "
            "or give --keystore"
        )
    return configured


def _created_at(key_id: str) -> str | None:
    # logcrypt names keys <UTC time>-<random>, so the id carries its birth.
    try:
        stamp = dt.datetime.strptime(key_id.split("-", 1)[0], "%Y%m%dT%H%M%SZ")
    except ValueError:
        return None
    return stamp.replace(tzinfo=dt.UTC).isoformat()


def _listing(path: Path, store: logcrypt.LogKeystore) -> dict[str, object]:
    return {
        "keystore": str(path),
        "current": store.current_id,
        "keys": [
            {
                "key_id": key_id,
                "created_at": _created_at(key_id),
                "current": key_id == store.current_id,
            }
            for key_id in sorted(store.keys)
        ],
    }


@keystore.command("create")
@home_option
@_keystore_option
def keystore_create(home: Path | None, path: Path | None) -> None:
    """Create the keystore with one fresh key (refuses an existing file)."""
    target = _keystore_path(home, path)
    echo_json(_listing(target, logcrypt.create_keystore(target, now=now())))


@keystore.command("rotate")
@home_option
@_keystore_option
def keystore_rotate(home: Path | None, path: Path | None) -> None:
    """Add a fresh key for new records; old keys stay to decrypt old records.

    Restart ``jplink ss serve`` afterwards: it reads the keystore at start.
    """
    target = _keystore_path(home, path)
    echo_json(_listing(target, logcrypt.rotate_keystore(target, now=now())))


@keystore.command("list")
@home_option
@_keystore_option
def keystore_list(home: Path | None, path: Path | None) -> None:
    """List key ids and creation times (never the keys)."""
    target = _keystore_path(home, path)
    echo_json(_listing(target, logcrypt.load_keystore(target)))
