"""ASiC-E evidence containers and message-log archives (PROTOCOLS.md §12).

Sans-IO: bytes in, bytes or frozen results out; ``now`` is a parameter.

- :func:`parse_asic_container` / :func:`build_asic_container`: the container
  layout X-Road's message log writes (one logged message with its signature,
  hash chains and time-stamp).
- :func:`verify_asic_container` with an :class:`AsicTrust` (from a
  shared-parameters file via :func:`load_asic_trust`): the offline auditor's
  check of signature, time-stamp, certificate chain and OCSP status.
- :func:`verify_archive_linking` / :func:`build_archive`: hash-linked ZIP
  archives of containers with their ``linkinginfo``.
"""

from __future__ import annotations

from jplink.security.certpath import build_certificate_path

from ._zip import ZipLimits
from .archive import (
    LINKING_INFO,
    ArchiveEntry,
    ArchiveLink,
    BuiltArchive,
    archive_file_name,
    build_archive,
    verify_archive_linking,
)
from .container import (
    ASIC_MIMETYPE,
    MALFORMED_ASIC,
    AsicContainer,
    Entry,
    build_asic_container,
    parse_asic_container,
)
from .trust import AsicTrust, load_asic_trust
from .verify import AsicVerified, verify_asic_container

__all__ = [
    "ASIC_MIMETYPE",
    "LINKING_INFO",
    "MALFORMED_ASIC",
    "ArchiveEntry",
    "ArchiveLink",
    "AsicContainer",
    "AsicTrust",
    "AsicVerified",
    "BuiltArchive",
    "Entry",
    "ZipLimits",
    "archive_file_name",
    "build_archive",
    "build_asic_container",
    "build_certificate_path",
    "load_asic_trust",
    "parse_asic_container",
    "verify_archive_linking",
    "verify_asic_container",
]
