"""Safe reading and deterministic writing of the ZIP files we exchange.

ASiC-E containers and message-log archives come from disk or from a peer, so
they are untrusted: the reader caps the archive size, the number of entries,
each entry's and the total uncompressed size (reading at most one byte past
the cap, so a lying header cannot make us inflate more), refuses encrypted
entries, path tricks (absolute names, ``..``, backslashes, drive letters,
control characters) and duplicate names, and turns every ``zipfile`` error
into :class:`~jplink.errors.MalformedMessage`.

The writer is deterministic: fixed timestamps, fixed permissions, entries in
the given order, so that the same record always gives the same bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from jplink.errors import MalformedMessage

__all__ = ["ZipEntry", "ZipLimits", "check_entry_name", "read_zip", "write_zip"]

# 1980-01-01 00:00:00, the earliest time ZIP can store: no build-time leaks.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\:]")
_ENCRYPTED = 0x1


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """Resource limits for reading an untrusted ZIP file."""

    max_archive_bytes: int = 64 * 1024 * 1024
    """The largest ZIP file accepted at all."""

    max_entries: int = 1024
    """The most entries (including directory entries)."""

    max_entry_bytes: int = 32 * 1024 * 1024
    """The largest uncompressed entry."""

    max_total_bytes: int = 128 * 1024 * 1024
    """The largest sum of uncompressed entries (zip-bomb defence)."""


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One file entry as read: its name, bytes and whether it was stored."""

    name: str
    data: bytes
    stored: bool


def _malformed(code: str, message: str, **detail: object) -> MalformedMessage:
    return MalformedMessage(message, code=code, detail=detail)


def check_entry_name(name: str, code: str) -> None:
    """Refuse names that could escape an extraction directory or hide files."""
    if (
        not name
        or name.startswith("/")
        or _BAD_CHARS.search(name)
        or any(seg in ("", ".", "..") for seg in name.rstrip("/").split("/"))
    ):
        raise _malformed(code, f"Unsafe ZIP entry name {name!r}", name=name)


def read_zip(data: bytes, *, limits: ZipLimits, code: str) -> tuple[ZipEntry, ...]:
    """Read every file entry of an untrusted ZIP, in archive order.

    Empty directory entries (``META-INF/``) are skipped.

    Args:
        data: the ZIP bytes.
        limits: the resource limits.
        code: the error code for a refused file (e.g. ``MalformedAsic``).

    Returns:
        The file entries in the order of the central directory.

    Raises:
        MalformedMessage: a limit is exceeded, an unsafe or duplicate name, an
            encrypted entry, or a file that is not a valid ZIP.
    """
    if len(data) > limits.max_archive_bytes:
        raise _malformed(code, "ZIP file is too large", size=len(data))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise _malformed(code, f"Not a valid ZIP file: {exc}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise _malformed(code, "ZIP file has too many entries", count=len(infos))
        seen: set[str] = set()
        entries: list[ZipEntry] = []
        total = 0
        for info in infos:
            name = info.filename
            check_entry_name(name, code)
            if name in seen:
                raise _malformed(code, f"Duplicate ZIP entry {name!r}", name=name)
            seen.add(name)
            if info.flag_bits & _ENCRYPTED:
                raise _malformed(code, f"Encrypted ZIP entry {name!r}", name=name)
            content = _read_entry(archive, info, limits.max_entry_bytes, code)
            if info.is_dir():
                if content:
                    raise _malformed(code, f"Directory entry {name!r} has data")
                continue
            total += len(content)
            if total > limits.max_total_bytes:
                raise _malformed(code, "ZIP content is too large in total")
            entries.append(
                ZipEntry(name, content, info.compress_type == zipfile.ZIP_STORED)
            )
    return tuple(entries)


def _read_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, code: str
) -> bytes:
    try:
        with archive.open(info) as stream:
            content = stream.read(cap + 1)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        ValueError,
        OSError,
        EOFError,
        zlib.error,
    ) as exc:
        raise _malformed(
            code, f"Cannot read ZIP entry {info.filename!r}: {exc}"
        ) from exc
    if len(content) > cap:
        raise _malformed(code, f"ZIP entry {info.filename!r} is too large")
    return content


def write_zip(
    entries: Sequence[tuple[str, bytes, bool]], *, comment: bytes = b""
) -> bytes:
    """Write a deterministic ZIP file.

    Args:
        entries: (name, data, stored) in write order; ``stored`` entries are
            not compressed (the ASiC ``mimetype`` must not be).
        comment: the ZIP file comment.

    Returns:
        The ZIP bytes.

    Raises:
        ValueError: an unsafe or duplicate name.
    """
    names = [name for name, _, _ in entries]
    if len(set(names)) != len(names):
        raise ValueError("duplicate ZIP entry names")
    for name in names:
        try:
            check_entry_name(name, "InvalidName")
        except MalformedMessage as exc:
            raise ValueError(exc.message) from None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, stored in entries:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # Unix, so the mode above is meaningful
            archive.writestr(info, data)
        archive.comment = comment
    return buffer.getvalue()
