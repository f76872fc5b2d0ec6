"""What an offline verifier of ASiC containers trusts, and path building.

X-Road verifies a container against the global configuration that was valid
when it was made (PROTOCOLS.md §8, §12.3): the approved CAs (top CAs are the
anchors, intermediates only help build the path), the OCSP responder
certificates and the approved TSAs, plus ``ocspFreshnessSeconds``.
:class:`AsicTrust` holds exactly that; build it from a shared-parameters file
with :func:`load_asic_trust`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm

from jplink.errors import CertificateExpired, CertificateValidationError
from jplink.globalconf import SharedParameters, parse_shared_parameters

__all__ = ["AsicTrust", "build_certificate_path", "load_asic_trust"]

_MAX_PATH = 6


@dataclass(frozen=True, slots=True)
class AsicTrust:
    """Trust material for verifying ASiC containers offline."""

    ca_certs: tuple[x509.Certificate, ...]
    """Trust anchors for signing certificates (approved top CAs that may
    issue signing certificates; authentication-only CAs are left out)."""

    tsa_certs: tuple[x509.Certificate, ...]
    """Approved TSA certificates (or CAs they must chain to)."""

    ocsp_responder_certs: tuple[x509.Certificate, ...] = ()
    """Responder certificates configured for the CAs; a CA itself and its
    delegated responders (EKU OCSPSigning) are accepted anyway."""

    intermediate_certs: tuple[x509.Certificate, ...] = ()
    """Intermediate CA certificates, for path building only."""

    ocsp_freshness: dt.timedelta = dt.timedelta(seconds=3600)
    """The largest age of an OCSP response at the time-stamp's genTime
    (X-Road's ``ocspFreshnessSeconds``, default 3600)."""

    @classmethod
    def from_shared_parameters(cls, params: SharedParameters) -> AsicTrust:
        """The trust of a parsed shared-parameters file.

        Args:
            params: the shared parameters (any supported version).

        Returns:
            The trust: signing-capable top CAs, their intermediates, all OCSP
            responder certificates, the approved TSAs and the freshness.
        """
        signing_cas = [ca for ca in params.approved_cas if not ca.authentication_only]
        return cls(
            ca_certs=tuple(ca.top_ca.cert for ca in signing_cas),
            tsa_certs=tuple(params.tsa_certs()),
            ocsp_responder_certs=tuple(params.ocsp_responder_certs()),
            intermediate_certs=tuple(
                info.cert for ca in signing_cas for info in ca.intermediate_cas
            ),
            ocsp_freshness=dt.timedelta(
                seconds=params.global_settings.ocsp_freshness_seconds
            ),
        )


def load_asic_trust(shared_params_xml: bytes) -> AsicTrust:
    """Build :class:`AsicTrust` from a shared-parameters XML file.

    Args:
        shared_params_xml: the ``shared-params.xml`` bytes (V2-V6; certs as
            base64 DER or base64 of PEM text).

    Returns:
        The trust.

    Raises:
        GlobalConfError: the file is not valid shared parameters.
        XmlSecurityError: the file is not acceptable XML.
    """
    return AsicTrust.from_shared_parameters(parse_shared_parameters(shared_params_xml))


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
