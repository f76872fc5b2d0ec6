"""Certification paths: from an end-entity certificate up to a trust anchor.

Sans-IO: certificates in, a checked path out; the validation time is a
parameter. Used wherever a certificate must chain to an approved CA: the
peer's TLS authentication certificate (:mod:`jplink.security.tls`), the
proofs of a management request (:mod:`jplink.protocol.management`) and the
signer of an ASiC container (:mod:`jplink.asic`).

Each link is checked for a matching issuer name, ``basicConstraints CA:TRUE``
on the issuer, a signature that verifies with the issuer's key, and validity
at the given time. Revocation is not checked here: callers check OCSP with
the issuer this path returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm

from jplink.errors import CertificateExpired, CertificateValidationError

__all__ = ["build_certificate_path"]

_MAX_PATH = 6


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject or not _is_ca(issuer):
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, _CryptoInvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _check_valid_at(cert: x509.Certificate, at: dt.datetime) -> None:
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise CertificateExpired(
            f"Certificate {cert.subject.rfc4514_string()} was not valid at "
            f"{at.isoformat()}",
            expired_at=cert.not_valid_after_utc,
        )


def build_certificate_path(
    cert: x509.Certificate,
    *,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    at: dt.datetime,
) -> tuple[x509.Certificate, ...]:
    """The path from ``cert`` up to a trust anchor, every link checked at ``at``.

    Args:
        cert: the end-entity certificate.
        anchors: trusted CA certificates (the path ends at one of them).
        intermediates: untrusted CA certificates that may fill the path.
        at: the validation time (the time-stamp's genTime).

    Returns:
        ``(cert, issuer, ..., anchor)``.

    Raises:
        CertificateExpired: a certificate on the path was not valid at ``at``.
        CertificateValidationError: no path to an anchor.
    """
    path = [cert]
    _check_valid_at(cert, at)
    for _ in range(_MAX_PATH):
        current = path[-1]
        anchor = next((a for a in anchors if _issued_by(current, a)), None)
        if anchor is not None:
            _check_valid_at(anchor, at)
            return (*path, anchor)
        step = next(
            (c for c in intermediates if c not in path and _issued_by(current, c)),
            None,
        )
        if step is None:
            break
        _check_valid_at(step, at)
        path.append(step)
    raise CertificateValidationError(
        f"Certificate {cert.subject.rfc4514_string()} does not chain to a trusted CA",
        detail={"subject": cert.subject.rfc4514_string()},
    )
