"""Trust decisions on downloaded global configuration (PR-GCONF §9.3).

:func:`verify_directory` checks a signed directory against the verification
certificates of the anchor (or of the shared parameters, after key rotation) and
against ``now``; :func:`verify_file` checks a downloaded file against the
directory. Both return a frozen result or raise: fail closed, never ``False``.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import GlobalConfExpired, GlobalConfSignatureError
from .algorithms import KeyKind, SignatureAlgorithm
from .directory import DirectoryEntry, SignedDirectory, parse_signed_directory

__all__ = ["VerifiedDirectory", "VerifiedFile", "verify_directory", "verify_file"]


@dataclass(frozen=True, slots=True)
class VerifiedDirectory:
    """A directory whose signature and expiry were checked.

    Attributes:
        expire_date: after this the configuration must not be used.
        version: the configuration version (``Version`` header).
        entries: the files to download, each with its expected hash.
        signing_cert: the verification certificate whose key signed it.
        signature_algorithm: the algorithm that was verified.
        signed_data: the exact bytes the signature covers.
    """

    expire_date: dt.datetime
    version: int
    entries: tuple[DirectoryEntry, ...]
    signing_cert: x509.Certificate
    signature_algorithm: SignatureAlgorithm
    signed_data: bytes

    def entries_for(
        self, content_identifier: str, instance: str | None = None
    ) -> tuple[DirectoryEntry, ...]:
        """The listed files with this content identifier (and instance, if given).

        Args:
            content_identifier: e.g. ``ContentIdentifier.SHARED_PARAMETERS``.
            instance: only entries whose ``instance`` parameter equals this.

        Returns:
            The matching entries in directory order (possibly none).
        """
        return tuple(
            e
            for e in self.entries
            if e.content_identifier == content_identifier
            and (instance is None or e.instance == instance)
        )


@dataclass(frozen=True, slots=True)
class VerifiedFile:
    """A downloaded file whose hash matched its directory entry."""

    entry: DirectoryEntry
    data: bytes


def _find_cert(
    directory: SignedDirectory, certs: Sequence[x509.Certificate]
) -> x509.Certificate:
    for cert in certs:
        digest = directory.cert_hash_algorithm.digest(cert.public_bytes(Encoding.DER))
        if hmac.compare_digest(digest, directory.cert_hash):
            return cert
    # PR-GCONF: "No matching cert, or a bad signature, is fatal."
    raise GlobalConfSignatureError(
        "No trusted verification certificate matches the directory's "
        "Verification-certificate-hash",
        detail={"hash_algorithm": directory.cert_hash_algorithm.value},
    )


def _ecdsa_forms(signature: bytes, key: ec.EllipticCurvePublicKey) -> list[bytes]:
    # XML-DSig writes ECDSA as raw r||s; JCA (X-Road's signer) writes DER.
    # Accept both. A value of exactly twice the coordinate size is r||s
    # unless it is also well-formed DER (a raw value may begin with 0x30 by
    # chance, 1 in 256): then both readings are tried. Either must be a valid
    # signature by the key, so trying two cannot make a forgery pass.
    size = (key.curve.key_size + 7) // 8
    if len(signature) != 2 * size:
        return [signature]
    r = int.from_bytes(signature[:size], "big")
    s = int.from_bytes(signature[size:], "big")
    forms = [encode_dss_signature(r, s)]
    try:
        if encode_dss_signature(*decode_dss_signature(signature)) == signature:
            forms.append(signature)
    except ValueError:
        pass
    return forms


def _verify_ecdsa(
    key: ec.EllipticCurvePublicKey,
    signature: bytes,
    data: bytes,
    hash_alg: hashes.HashAlgorithm,
) -> None:
    forms = _ecdsa_forms(signature, key)
    for form in forms[:-1]:
        try:
            key.verify(form, data, ec.ECDSA(hash_alg))
            return
        except InvalidSignature:
            continue
    key.verify(forms[-1], data, ec.ECDSA(hash_alg))  # raises InvalidSignature


def _check_signature(directory: SignedDirectory, cert: x509.Certificate) -> None:
    algorithm = directory.signature_algorithm
    key = cert.public_key()
    hash_alg = algorithm.digest.hash_algorithm()
    try:
        if algorithm.key_kind is KeyKind.RSA and isinstance(key, rsa.RSAPublicKey):
            key.verify(
                directory.signature,
                directory.signed_data,
                padding.PKCS1v15(),
                hash_alg,
            )
            return
        if algorithm.key_kind is KeyKind.EC and isinstance(
            key, ec.EllipticCurvePublicKey
        ):
            _verify_ecdsa(key, directory.signature, directory.signed_data, hash_alg)
            return
    except InvalidSignature:
        raise GlobalConfSignatureError(
            "Signature of the configuration directory does not verify"
        ) from None
    raise GlobalConfSignatureError(
        f"Signature algorithm {algorithm.value} does not fit the key of "
        f"{cert.subject.rfc4514_string()}"
    )


def verify_directory(
    directory_bytes: bytes,
    content_type: str,
    *,
    verification_certs: Sequence[x509.Certificate],
    now: dt.datetime,
) -> VerifiedDirectory:
    """Verify a downloaded signed directory.

    Steps (PR-GCONF client algorithm): find the verification certificate named
    by ``Verification-certificate-hash``, verify the signature over the exact
    directory bytes, then check ``Expire-date`` against ``now``.

    Args:
        directory_bytes: the HTTP response body, exactly as received.
        content_type: the HTTP ``Content-Type`` header value.
        verification_certs: trusted configuration-signing certificates (the
            anchor's, or the shared params' internal/external ones).
        now: the current time (timezone-aware).

    Returns:
        The verified directory.

    Raises:
        GlobalConfError: malformed directory (missing part or header, bad
            base64, unknown algorithm).
        GlobalConfSignatureError: no matching certificate, or a bad signature.
        GlobalConfExpired: ``Expire-date`` missing or before ``now``.
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    directory = parse_signed_directory(directory_bytes, content_type)
    cert = _find_cert(directory, verification_certs)
    _check_signature(directory, cert)
    # PR-GCONF: "Parse Expire-date. If missing or in the past: GLOBAL_CONF_OUTDATED."
    if directory.expire_date is None:
        raise GlobalConfExpired("Configuration directory has no Expire-date")
    if directory.expire_date < now:
        raise GlobalConfExpired(
            f"Configuration expired at {directory.expire_date.isoformat()}",
            detail={"expire_date": directory.expire_date.isoformat()},
        )
    return VerifiedDirectory(
        expire_date=directory.expire_date,
        version=directory.version,
        entries=directory.entries,
        signing_cert=cert,
        signature_algorithm=directory.signature_algorithm,
        signed_data=directory.signed_data,
    )


def verify_file(entry: DirectoryEntry, data: bytes) -> VerifiedFile:
    """Check a downloaded file against its (verified) directory entry.

    Args:
        entry: from :attr:`VerifiedDirectory.entries`.
        data: the file's bytes as downloaded from ``entry.content_location``.

    Returns:
        The file, now trusted to be what the directory signed.

    Raises:
        GlobalConfSignatureError: the hash does not match.
    """
    digest = entry.hash_algorithm.digest(data)
    if not hmac.compare_digest(digest, entry.hash):
        raise GlobalConfSignatureError(
            f"Hash of {entry.content_location} does not match the signed directory",
            detail={
                "content_identifier": str(entry.content_identifier),
                "content_location": entry.content_location,
            },
        )
    return VerifiedFile(entry, data)
