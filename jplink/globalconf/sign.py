"""Build a signed configuration directory, as a central server publishes it.

The layout is byte-for-byte the one X-Road's central server writes (see
:mod:`jplink.globalconf.directory`): CRLF line ends, a headers-only first part
with ``Expire-date`` and ``Version``, one part per file with its base64 hash,
then the signature part over the exact directory bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .algorithms import DigestAlgorithm, signature_algorithm_for_key

__all__ = ["ConfFile", "build_signed_directory"]

_CRLF = "\r\n"
_BOUNDARY_CHARS = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class ConfFile:
    """A file to publish in a directory.

    Attributes:
        content_identifier: ``SHARED-PARAMETERS``, ``PRIVATE-PARAMETERS``, ...
        content_location: its path relative to the download base URL
            (``/V6/20251110170000548026000/shared-params.xml``).
        data: the exact bytes that will be served (and hashed).
        file_name: optional ``Content-file-name`` hint.
    """

    content_identifier: str
    content_location: str
    data: bytes
    file_name: str | None = None


def _boundary(avoid: bytes) -> str:
    while True:
        candidate = "".join(secrets.choice(_BOUNDARY_CHARS) for _ in range(20))
        if candidate.encode("ascii") not in avoid:
            return candidate


def _header_safe(value: str, what: str) -> str:
    if (
        any(c in value for c in "\r\n")
        or not value.isprintable()
        or not value.isascii()
    ):
        raise ValueError(f"{what} must be printable ASCII on one line: {value!r}")
    return value


def _format_expire(expire: dt.datetime) -> str:
    return expire.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sign(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    data: bytes,
    digest: DigestAlgorithm,
) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), digest.hash_algorithm())
    # DER, as JCA's SHA512withECDSA (X-Road's signer) produces.
    return key.sign(data, ec.ECDSA(digest.hash_algorithm()))


def build_signed_directory(
    files: Sequence[ConfFile],
    *,
    instance: str,
    signing_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    signing_cert: x509.Certificate,
    expire: dt.datetime,
    now: dt.datetime,
    version: int = 6,
    digest: DigestAlgorithm = DigestAlgorithm.SHA512,
) -> tuple[str, bytes]:
    """Build and sign a configuration directory.

    Args:
        files: the files to list, in order.
        instance: the instance written into each ``Content-identifier``.
        signing_key: the configuration-signing key (RSA or EC).
        signing_cert: its certificate; its hash goes into
            ``Verification-certificate-hash``.
        expire: ``Expire-date`` (aware; written in UTC, whole seconds).
        now: the generation time (aware); ``expire`` must be later.
        version: the configuration version (``Version`` header).
        digest: the digest for file hashes, the certificate hash and the
            signature (SHA-512 by default, as X-Road).

    Returns:
        ``(content_type, body)`` to serve as the HTTP response.

    Raises:
        ValueError: naive times, ``expire`` not after ``now``, a key that does
            not match the certificate, or header values with line breaks.
        TypeError: the key is neither RSA nor EC.
    """
    if expire.tzinfo is None or now.tzinfo is None:
        raise ValueError("expire and now must be timezone-aware")
    if expire <= now:
        raise ValueError("expire must be after now")
    if version < 1:
        raise ValueError("version must be positive")
    algorithm = signature_algorithm_for_key(signing_key, digest)
    spki = PublicFormat.SubjectPublicKeyInfo
    if signing_key.public_key().public_bytes(
        Encoding.DER, spki
    ) != signing_cert.public_key().public_bytes(Encoding.DER, spki):
        raise ValueError("signing_key does not match signing_cert")
    _header_safe(instance, "instance")

    file_parts = []
    for conf_file in files:
        headers = [
            "Content-type: application/octet-stream",
            "Content-transfer-encoding: base64",
            "Content-identifier: "
            f"{_header_safe(str(conf_file.content_identifier), 'content identifier')};"
            f" instance='{instance}'",
            "Content-location: "
            f"{_header_safe(conf_file.content_location, 'content location')}",
            f"Hash-algorithm-id: {digest.value}",
        ]
        if conf_file.file_name is not None:
            headers.append(
                f"Content-file-name: {_header_safe(conf_file.file_name, 'file name')}"
            )
        file_hash = base64.b64encode(digest.digest(conf_file.data)).decode("ascii")
        file_parts.append(_CRLF.join(headers) + _CRLF + _CRLF + file_hash)

    head = f"Expire-date: {_format_expire(expire)}{_CRLF}Version: {version}{_CRLF}"
    content = "".join(file_parts).encode("ascii") + head.encode("ascii")
    inner = _boundary(content)
    signed = (
        f"--{inner}{_CRLF}{head}"
        + "".join(f"{_CRLF}--{inner}{_CRLF}{part}" for part in file_parts)
        + f"{_CRLF}--{inner}--{_CRLF}"
    ).encode("ascii")

    signature = base64.b64encode(_sign(signing_key, signed, digest)).decode("ascii")
    cert_hash = base64.b64encode(
        digest.digest(signing_cert.public_bytes(Encoding.DER))
    ).decode("ascii")
    signature_headers = _CRLF.join(
        [
            "Content-Type: application/octet-stream",
            "Content-Transfer-Encoding: base64",
            f"Signature-Algorithm-Id: {algorithm.value}",
            f'Verification-certificate-hash: {cert_hash}; hash-algorithm-id="'
            f'{digest.value}"',
        ]
    )
    outer = _boundary(signed + signature.encode("ascii"))
    body = (
        f"--{outer}{_CRLF}"
        f"Content-Type: multipart/mixed; charset=UTF-8; boundary={inner}{_CRLF}{_CRLF}"
    ).encode("ascii")
    body += signed
    body += (
        f"{_CRLF}--{outer}{_CRLF}{signature_headers}{_CRLF}{_CRLF}{signature}"
        f"{_CRLF}--{outer}--{_CRLF}"
    ).encode("ascii")
    content_type = f"multipart/related; charset=UTF-8; boundary={outer}"
    return content_type, body
