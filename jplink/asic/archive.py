"""Message-log archives: ZIP files of ASiC containers, hash-linked.

X-Road's archiver (PROTOCOLS.md §12.5) writes the time-stamped containers of
a period into one ZIP with a ``linkinginfo`` text entry:

- first line: ``<previous archive's last digest|-> <previous archive name|->
  <algorithm>`` (``SHA-512``);
- then per container, in archiving order: ``<digest_i> <entry name>`` with
  ``digest_i = hex(H(digest_{i-1} || hex(H(entry bytes))))`` (lower-case hex,
  UTF-8), starting from the previous archive's last digest ("" for the first).

The last digest carries over to the next archive, so a missing, reordered or
altered container, or a dropped archive, breaks the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from jplink.errors import InvalidDigest, MalformedMessage

from ._zip import ZipLimits, check_entry_name, read_zip, write_zip

__all__ = [
    "LINKING_INFO",
    "ArchiveEntry",
    "ArchiveLink",
    "BuiltArchive",
    "archive_file_name",
    "build_archive",
    "verify_archive_linking",
]

#: Name of the linking entry inside an archive.
LINKING_INFO = "linkinginfo"
_MALFORMED = "MalformedArchive"
_NONE = "-"
#: linkinginfo algorithm names (X-Road's Java names) -> hashlib names.
_ALGORITHMS = {"SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
_ARCHIVE_LIMITS = ZipLimits(
    max_archive_bytes=1024 * 1024 * 1024,
    max_entries=100_000,
    max_entry_bytes=64 * 1024 * 1024,
    max_total_bytes=2 * 1024 * 1024 * 1024,
)


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """A container in an archive and its link digest (lower-case hex)."""

    name: str
    digest: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ArchiveLink:
    """An archive whose linking verified.

    Attributes:
        previous_digest: the digest it links to (None for the first archive).
        previous_name: the previous archive's file name, if recorded.
        algorithm: the linkinginfo hash name (``SHA-512``).
        entries: the containers in linking order.
        last_digest: the digest the next archive must link to.
    """

    previous_digest: str | None
    previous_name: str | None
    algorithm: str
    entries: tuple[ArchiveEntry, ...]
    last_digest: str


@dataclass(frozen=True, slots=True)
class BuiltArchive:
    """A built archive and the digest the next archive links to."""

    data: bytes
    last_digest: str


def _bad(message: str, **detail: object) -> MalformedMessage:
    return MalformedMessage(message, code=_MALFORMED, detail=detail)


def _link(algorithm: str, previous: str, data: bytes) -> str:
    h = _ALGORITHMS[algorithm]
    inner = hashlib.new(h, data).hexdigest()
    return hashlib.new(h, (previous + inner).encode()).hexdigest()


def _header(text: str) -> tuple[str | None, str | None, str]:
    fields = text.split(" ")
    if len(fields) != 3 or fields[2] not in _ALGORITHMS:
        raise _bad("linkinginfo header must be '<digest|-> <name|-> <algorithm>'")
    digest, name, algorithm = fields
    return (
        None if digest == _NONE else digest,
        None if name == _NONE else name,
        algorithm,
    )


def _linking_lines(files: dict[str, bytes]) -> list[str]:
    raw = files.get(LINKING_INFO)
    if raw is None:
        raise _bad("The archive has no linkinginfo entry")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("linkinginfo is not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise _bad("linkinginfo is empty")
    return lines


def verify_archive_linking(
    data: bytes,
    *,
    previous_digest: str | None,
    limits: ZipLimits = _ARCHIVE_LIMITS,
) -> ArchiveLink:
    """Check an archive's ``linkinginfo`` against its containers.

    Args:
        data: the archive ZIP bytes (untrusted; decrypt GPG archives first).
        previous_digest: the last digest of the previous archive, or None
            when this must be the first archive of its chain.
        limits: ZIP resource limits.

    Returns:
        The verified linking, with the containers in order.

    Raises:
        MalformedMessage: ``MalformedArchive`` for a bad ZIP or linkinginfo,
            a listed entry that is missing, or an entry that is not listed.
        InvalidDigest: ``InvalidArchiveLink``: the archive links to another
            predecessor, or a digest does not match its container.
    """
    files = {e.name: e.data for e in read_zip(data, limits=limits, code=_MALFORMED)}
    lines = _linking_lines(files)
    prev, prev_name, algorithm = _header(lines[0])
    if prev != previous_digest:
        raise InvalidDigest(
            "The archive does not link to the expected previous archive",
            code="InvalidArchiveLink",
            detail={"expected": previous_digest, "found": prev},
        )
    current = prev or ""
    entries: list[ArchiveEntry] = []
    for number, line in enumerate(lines[1:], start=2):
        digest, sep, name = line.partition(" ")
        if not sep or name not in files or name == LINKING_INFO:
            raise _bad(f"linkinginfo line {number} names no entry", line=number)
        if any(e.name == name for e in entries):
            raise _bad(f"linkinginfo lists {name!r} twice", name=name)
        current = _link(algorithm, current, files[name])
        if digest.lower() != current:
            raise InvalidDigest(
                f"Linking digest of {name!r} does not match",
                code="InvalidArchiveLink",
                detail={"entry": name, "line": number},
            )
        entries.append(ArchiveEntry(name, current, files[name]))
    unlisted = sorted(set(files) - {LINKING_INFO} - {e.name for e in entries})
    if unlisted:
        raise _bad(f"Entries not in linkinginfo: {', '.join(unlisted)}", names=unlisted)
    return ArchiveLink(prev, prev_name, algorithm, tuple(entries), current)


def build_archive(
    entries: Sequence[tuple[str, bytes]],
    *,
    previous_digest: str | None,
    previous_name: str | None = None,
    algorithm: str = "SHA-512",
) -> BuiltArchive:
    """Build an archive of containers with its ``linkinginfo``.

    Args:
        entries: (entry name, container bytes) in archiving order, e.g.
            ``<queryId>-request-<seq>.asice``.
        previous_digest: the previous archive's last digest, or None.
        previous_name: the previous archive's file name, or None.
        algorithm: ``SHA-512`` (X-Road's default), ``SHA-384`` or ``SHA-256``.

    Returns:
        The archive bytes and its last digest.

    Raises:
        ValueError: no entries, a bad or duplicate name, or an unknown algorithm.
    """
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"unknown linking algorithm {algorithm!r}")
    if not entries:
        raise ValueError("an archive needs at least one entry")
    for name, _ in entries:
        if " " in name or "\n" in name or name == LINKING_INFO:
            raise ValueError(f"invalid archive entry name {name!r}")
        try:
            check_entry_name(name, _MALFORMED)
        except MalformedMessage as exc:
            raise ValueError(exc.message) from None
    lines = [f"{previous_digest or _NONE} {previous_name or _NONE} {algorithm}"]
    current = previous_digest or ""
    for name, blob in entries:
        current = _link(algorithm, current, blob)
        lines.append(f"{current} {name}")
    linking = ("\n".join(lines) + "\n").encode()
    data = write_zip(
        [
            *((name, blob, False) for name, blob in entries),
            (LINKING_INFO, linking, False),
        ]
    )
    return BuiltArchive(data, current)


def archive_file_name(
    start: dt.datetime, end: dt.datetime, last_digest: str, *, group: str | None = None
) -> str:
    """X-Road's archive file name ``mlog-[group-]<start>-<end>-<16 hex>.zip``.

    Args:
        start, end: the times of the first and last archived record.
        last_digest: the archive's last linking digest.
        group: the archive group, if archives are grouped.

    Returns:
        The file name.
    """
    stamp = "%Y%m%d%H%M%S"
    prefix = f"mlog-{group}-" if group else "mlog-"
    return (
        f"{prefix}{start.strftime(stamp)}-{end.strftime(stamp)}-{last_digest[:16]}.zip"
    )
