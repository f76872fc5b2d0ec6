"""Message-log archiving: hash-linked ZIP files of ASiC containers (§12.5).

One pass (:func:`archive_once`, run every ``[archive] interval_seconds`` by
:func:`run_archiver` and by ``jplink ss log archive``):

1. Take the time-stamped records that are not archived yet, oldest first,
   per archive group (one chain for all, or one per member).
2. Build each record's container and the archive with its ``linkinginfo``,
   continuing the group's chain from ``last_archive_digest``
   (PROTOCOLS.md §12.5: "The last digest per group is kept in the table
   ``last_archive_digest``").
3. Optionally encrypt it with ``gpg`` to the member's recipients.
4. Write ``<name>.part``, fsync it, then in ONE transaction mark the records
   archived (only if still unarchived) and advance the chain; then rename the
   file to X-Road's :func:`~jplink.asic.archive_file_name` and fsync the
   directory. A crash leaves a ``.part`` file that the next pass renames (the
   transaction committed) or deletes (it did not): no record is lost and none
   is archived twice.
5. Queue the file for the transfer hook and run the queue; a failing hook is
   logged and retried on the next pass, and the file is never removed.

The file writes, ``gpg`` and the hook are in :mod:`security_server.archive_files`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, select, update

from jplink.asic import archive_file_name, build_archive
from jplink.errors import Conflict, StorageError
from jplink.identifiers import parse_client_id
from jplink.storage import Database

from .archive_files import fsync_dir, gpg_encrypt, run_transfer_command, write_durably
from .config import SecurityServerConfig
from .evidence import BodyDecryptor, build_record_container
from .messagelog_query import classify_outcomes
from .models import (
    LastArchiveDigest,
    MessageLogRecord,
    MessageTimestamp,
    PendingArchiveTransfer,
)

__all__ = [
    "ArchivePass",
    "WrittenArchive",
    "archive_once",
    "count_unarchived",
    "gpg_encrypt",
    "run_archiver",
]

_log = logging.getLogger(__name__)
_PART = ".part"


@dataclass(frozen=True, slots=True)
class WrittenArchive:
    """One archive file written by a pass."""

    group: str
    path: Path
    records: int
    last_digest: str


@dataclass(frozen=True, slots=True)
class ArchivePass:
    """What one pass did."""

    archives: tuple[WrittenArchive, ...]
    transferred: tuple[Path, ...]
    transfer_failures: tuple[Path, ...]


def _group_of(config: SecurityServerConfig, client: str) -> str:
    if not config.archive.group_by_member:
        return ""
    return str(parse_client_id(client).member)


def _safe_group(group: str) -> str | None:
    # "MEMBER:JP/COM/1111" -> "JP_COM_1111" (file-name safe).
    if not group:
        return None
    text = group.split(":", 1)[-1]
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)


def _recipients(config: SecurityServerConfig, group: str) -> tuple[str, ...]:
    for keys in config.archive.member_keys:
        if keys.member == group:
            return keys.recipients
    return config.archive.default_recipients


async def _recover_partials(db: Database, directory: Path) -> None:
    """Finish or undo what a crash left between the fsync and the rename."""
    partials = sorted(directory.glob(f"*{_PART}"))
    if not partials:
        return
    async with db.transaction() as session:
        committed = set(
            (await session.scalars(select(LastArchiveDigest.file_name))).all()
        )
    for part in partials:
        final = part.with_name(part.name[: -len(_PART)])
        if final.name in committed:
            os.replace(part, final)
            _log.warning("archive %s recovered after an interrupted pass", final)
        else:
            part.unlink()
            _log.warning("archive %s discarded: its pass did not commit", part)


async def _candidates(
    db: Database, config: SecurityServerConfig
) -> dict[str, list[int]]:
    limit = config.archive.max_records_per_archive
    m = MessageLogRecord
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(m.id, m.client)
                .where(m.archived.is_(False), m.timestamp_id.is_not(None))
                .order_by(m.id)
                .limit(limit * 10)
            )
        ).all()
    groups: dict[str, list[int]] = {}
    for record_id, client in rows:
        ids = groups.setdefault(_group_of(config, client), [])
        if len(ids) < limit:
            ids.append(record_id)
    return groups


async def _archive_group(
    db: Database,
    config: SecurityServerConfig,
    group: str,
    ids: Sequence[int],
    *,
    decrypt: BodyDecryptor | None,
    now: dt.datetime,
) -> WrittenArchive:
    m = MessageLogRecord
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(m, MessageTimestamp)
                .join(MessageTimestamp, MessageTimestamp.id == m.timestamp_id)
                .where(m.id.in_(list(ids)))
                .order_by(m.id)
            )
        ).all()
        last = await session.scalar(
            select(LastArchiveDigest).where(LastArchiveDigest.group_name == group)
        )
        previous = None if last is None else (last.digest, last.file_name)
    evidence = [build_record_container(r, ts, decrypt=decrypt) for r, ts in rows]
    built = build_archive(
        [(e.file_name, e.data) for e in evidence],
        previous_digest=None if previous is None else previous[0],
        previous_name=None if previous is None else previous[1],
    )
    records = [r for r, _ in rows]
    name = archive_file_name(
        records[0].logged_at,
        records[-1].logged_at,
        built.last_digest,
        group=_safe_group(group),
    )
    data = built.data
    if config.archive.encrypt:
        data = await gpg_encrypt(
            data, _recipients(config, group), gpg_home=config.archive.gpg_home
        )
        name += ".gpg"
    directory = config.message_log.archive_dir
    final = directory / name
    part = final.with_name(final.name + _PART)
    await asyncio.to_thread(write_durably, part, data)
    try:
        await _commit(
            db, config, group, previous, records, name, built.last_digest, now
        )
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, final)
    await asyncio.to_thread(fsync_dir, directory)
    return WrittenArchive(group, final, len(records), built.last_digest)


async def _commit(
    db: Database,
    config: SecurityServerConfig,
    group: str,
    previous: tuple[str, str] | None,
    records: Sequence[MessageLogRecord],
    name: str,
    last_digest: str,
    now: dt.datetime,
) -> None:
    m = MessageLogRecord
    ids = [r.id for r in records]
    async with db.transaction() as session:
        done = await session.execute(
            update(m)
            .where(m.id.in_(ids), m.archived.is_(False))
            .values(archived=True, archive_file=name)
        )
        if done.rowcount != len(ids):  # type: ignore[attr-defined]
            raise Conflict(
                "Another archiver archived some of these records; pass abandoned",
                code="ArchiveConflict",
            )
        if previous is None:
            session.add(
                LastArchiveDigest(
                    group_name=group, digest=last_digest, file_name=name, updated_at=now
                )
            )
        else:
            moved = await session.execute(
                update(LastArchiveDigest)
                .where(
                    LastArchiveDigest.group_name == group,
                    LastArchiveDigest.digest == previous[0],
                )
                .values(digest=last_digest, file_name=name, updated_at=now)
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(
                    "The archive chain moved on during this pass; pass abandoned",
                    code="ArchiveConflict",
                )
        if config.archive.transfer_command:
            path = str(config.message_log.archive_dir / name)
            session.add(
                PendingArchiveTransfer(
                    path=path, attempts=0, last_error="", created_at=now, updated_at=now
                )
            )


async def _run_transfers(
    db: Database, config: SecurityServerConfig, now: dt.datetime
) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    command = config.archive.transfer_command
    if not command:
        return (), ()
    async with db.transaction() as session:
        pending = (
            await session.scalars(
                select(PendingArchiveTransfer).order_by(PendingArchiveTransfer.id)
            )
        ).all()
    ok: list[Path] = []
    failed: list[Path] = []
    for item in pending:
        error = await run_transfer_command(
            command, Path(item.path), timeout=config.archive.transfer_timeout_seconds
        )
        async with db.transaction() as session:
            if error is None:
                await session.execute(
                    delete(PendingArchiveTransfer).where(
                        PendingArchiveTransfer.id == item.id
                    )
                )
                ok.append(Path(item.path))
                continue
            _log.error("archive transfer of %s failed: %s", item.path, error)
            await session.execute(
                update(PendingArchiveTransfer)
                .where(PendingArchiveTransfer.id == item.id)
                .values(
                    attempts=PendingArchiveTransfer.attempts + 1,
                    last_error=error[:2000],
                    updated_at=now,
                )
            )
            failed.append(Path(item.path))
    return tuple(ok), tuple(failed)


async def archive_once(
    db: Database,
    config: SecurityServerConfig,
    *,
    now: dt.datetime,
    decrypt: BodyDecryptor | None = None,
) -> ArchivePass:
    """Run one archiving pass (see the module docstring).

    Args:
        db: the security server's database.
        config: the instance configuration (``[archive]``, ``archive_dir``).
        now: the current time (stored as the chain's update time).
        decrypt: decrypts bodies encrypted at rest.

    Returns:
        The archives written and the transfer results.

    Raises:
        StorageError: the archive directory cannot be written.
        Conflict: ``ArchiveConflict``: another archiver ran at the same time.
        SecurityError: GPG encryption failed (code ``ArchiveEncryptionFailed``).
    """
    directory = config.message_log.archive_dir
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StorageError(f"Cannot create the archive directory {directory}") from exc
    await _recover_partials(db, directory)
    await classify_outcomes(db)
    written = []
    for group, ids in sorted((await _candidates(db, config)).items()):
        if ids:
            written.append(
                await _archive_group(db, config, group, ids, decrypt=decrypt, now=now)
            )
    ok, failed = await _run_transfers(db, config, now)
    return ArchivePass(tuple(written), ok, failed)


async def count_unarchived(db: Database) -> int:
    """How many time-stamped records wait for the archiver."""
    m = MessageLogRecord
    async with db.transaction() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(m)
                .where(m.archived.is_(False), m.timestamp_id.is_not(None))
            )
            or 0
        )


async def run_archiver(
    db: Database,
    config: SecurityServerConfig,
    *,
    clock: Callable[[], dt.datetime],
    decrypt: BodyDecryptor | None = None,
) -> None:
    """Archive every ``[archive] interval_seconds`` until cancelled.

    A failed pass is logged and retried at the next interval; nothing it
    half-did stays behind (see :func:`archive_once`).
    """
    while True:
        await asyncio.sleep(config.archive.interval_seconds)
        try:
            result = await archive_once(db, config, now=clock(), decrypt=decrypt)
        except Exception:  # a background task must survive a bad pass
            _log.exception("message-log archiving pass failed")
            continue
        for archive in result.archives:
            _log.info("archived %d records to %s", archive.records, archive.path)
