"""The signed configuration directory (PR-GCONF §9.3): structure and reader.

What a configuration source serves at ``GET <downloadURL>?version=N``::

    Content-Type: multipart/related; charset=UTF-8; boundary=B1

    --B1
    Content-Type: multipart/mixed; charset=UTF-8; boundary=B2

    --B2                                    <- signed bytes start here
    Expire-date: 2035-11-11T03:07:40Z
    Version: 6

    --B2
    Content-type: application/octet-stream
    Content-transfer-encoding: base64
    Content-identifier: SHARED-PARAMETERS; instance='DEV'
    Content-location: /V6/20251110170000548026000/shared-params.xml
    Hash-algorithm-id: http://www.w3.org/2001/04/xmlenc#sha512

    <base64 SHA-512 of the file>
    --B2--                                  <- signed bytes end after this CRLF
    --B1
    Content-Type: application/octet-stream
    Content-Transfer-Encoding: base64
    Signature-Algorithm-Id: http://www.w3.org/2001/04/xmldsig-more#rsa-sha512
    Verification-certificate-hash: <b64>; hash-algorithm-id="...#sha512"

    <base64 signature>
    --B1--

:func:`parse_signed_directory` only reads the structure. Nothing in a
:class:`SignedDirectory` is trusted until
:func:`~jplink.globalconf.verify.verify_directory` has checked it.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from ..errors import GlobalConfError
from ._mime import MimePart, parse_header_value, split_multipart
from ._xmlutil import decode_base64, parse_datetime_text
from .algorithms import DigestAlgorithm, SignatureAlgorithm

__all__ = [
    "ContentIdentifier",
    "DirectoryEntry",
    "SignedDirectory",
    "parse_signed_directory",
]


class ContentIdentifier(enum.StrEnum):
    """Well-known ``Content-identifier`` values; custom ones are plain strings."""

    PRIVATE_PARAMETERS = "PRIVATE-PARAMETERS"
    SHARED_PARAMETERS = "SHARED-PARAMETERS"
    MONITORING = "MONITORING"
    FETCHINTERVAL = "FETCHINTERVAL"
    NEXTUPDATE = "NEXTUPDATE"


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One file listed in the directory.

    Attributes:
        content_identifier: ``SHARED-PARAMETERS`` etc. (a :class:`ContentIdentifier`
            when known, else the raw string).
        instance: the ``instance`` parameter of the content identifier, if any.
        content_location: path to download, relative to the source's base URL.
        hash_algorithm: how ``hash`` was computed.
        hash: the expected digest of the file's bytes.
        file_name: the optional ``Content-file-name`` hint.
    """

    content_identifier: str
    instance: str | None
    content_location: str
    hash_algorithm: DigestAlgorithm
    hash: bytes
    file_name: str | None = None


@dataclass(frozen=True, slots=True)
class SignedDirectory:
    """A parsed, NOT yet verified, signed directory.

    Attributes:
        signed_data: the exact bytes the signature covers (part-1 body).
        signature: the decoded signature value.
        signature_algorithm: from ``Signature-Algorithm-Id``.
        cert_hash: ``Verification-certificate-hash``, decoded.
        cert_hash_algorithm: its ``hash-algorithm-id`` parameter.
        expire_date: ``Expire-date``, or ``None`` when absent (then outdated).
        version: the ``Version`` header.
        entries: the listed files, in order.
    """

    signed_data: bytes
    signature: bytes
    signature_algorithm: SignatureAlgorithm
    cert_hash: bytes
    cert_hash_algorithm: DigestAlgorithm
    expire_date: dt.datetime | None
    version: int
    entries: tuple[DirectoryEntry, ...]


def _multipart(content_type: str, expected: str, what: str) -> str:
    mime_type, params = parse_header_value(content_type)
    if mime_type.lower() != expected:
        raise GlobalConfError(f"{what}: expected {expected}, got {mime_type[:80]!r}")
    boundary = params.get("boundary")
    if not boundary:
        raise GlobalConfError(f"{what}: Content-Type has no boundary")
    return boundary


def _entry(part: MimePart) -> DirectoryEntry:
    ident, params = parse_header_value(part.header("Content-identifier"))
    if not ident:
        raise GlobalConfError("Signed directory: empty Content-identifier")
    encoding = part.headers.get("content-transfer-encoding", "base64")
    if encoding.strip().lower() != "base64":
        raise GlobalConfError(
            f"Signed directory: unsupported transfer encoding {encoding[:40]!r}"
        )
    location = part.header("Content-location").strip()
    if not location:
        raise GlobalConfError("Signed directory: empty Content-location")
    known = {c.value: c for c in ContentIdentifier}
    return DirectoryEntry(
        content_identifier=known.get(ident, ident),
        instance=params.get("instance"),
        content_location=location,
        hash_algorithm=DigestAlgorithm.from_uri(part.header("Hash-algorithm-id")),
        hash=decode_base64(part.body, "file hash"),
        file_name=part.headers.get("content-file-name"),
    )


def _directory(
    signed: bytes, boundary: str
) -> tuple[dt.datetime | None, int, tuple[DirectoryEntry, ...]]:
    parts = split_multipart(signed, boundary)
    if not parts:
        raise GlobalConfError("Signed directory: the directory has no parts")
    head = parts[0]
    raw_version = head.header("Version").strip()
    if not raw_version.isdigit():
        raise GlobalConfError(f"Signed directory: bad Version {raw_version[:20]!r}")
    raw_expire = head.headers.get("expire-date")
    expire = (
        None
        if raw_expire is None
        else parse_datetime_text(raw_expire.strip(), "Expire-date")
    )
    return expire, int(raw_version), tuple(_entry(p) for p in parts[1:])


def parse_signed_directory(body: bytes, content_type: str) -> SignedDirectory:
    """Read the structure of a signed directory (no trust decision).

    Args:
        body: the HTTP response body, exactly as received.
        content_type: the HTTP ``Content-Type`` header (``multipart/related``
            with a boundary).

    Returns:
        The parsed, unverified directory.

    Raises:
        GlobalConfError: a missing part or header, bad base64, unknown
            algorithm, or malformed MIME.
    """
    if not isinstance(body, bytes):
        raise TypeError("body must be bytes")
    outer = split_multipart(body, _multipart(content_type, "multipart/related", "Body"))
    if len(outer) != 2:
        raise GlobalConfError(
            "Signed directory must have 2 parts (directory, signature), "
            f"has {len(outer)}"
        )
    directory_part, signature_part = outer
    inner_boundary = _multipart(
        directory_part.header("Content-Type"), "multipart/mixed", "Directory part"
    )
    # PR-GCONF: the signature covers the directory part's body exactly, from
    # the first "--B2" to the closing "--B2--" CRLF (RFC 2046: the CRLF before
    # the outer delimiter belongs to that delimiter, not to the body).
    signed = directory_part.body
    expire, version, entries = _directory(signed, inner_boundary)
    encoding = signature_part.headers.get("content-transfer-encoding", "")
    if encoding.strip().lower() != "base64":
        raise GlobalConfError("Signature part must be base64 encoded")
    cert_hash, hash_params = parse_header_value(
        signature_part.header("Verification-certificate-hash")
    )
    hash_uri = hash_params.get("hash-algorithm-id")
    if hash_uri is None:
        raise GlobalConfError("Verification-certificate-hash lacks hash-algorithm-id")
    return SignedDirectory(
        signed_data=signed,
        signature=decode_base64(signature_part.body, "signature"),
        signature_algorithm=SignatureAlgorithm.from_uri(
            signature_part.header("Signature-Algorithm-Id")
        ),
        cert_hash=decode_base64(cert_hash, "Verification-certificate-hash"),
        cert_hash_algorithm=DigestAlgorithm.from_uri(hash_uri),
        expire_date=expire,
        version=version,
        entries=entries,
    )
