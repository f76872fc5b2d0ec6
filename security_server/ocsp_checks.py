"""Trust checks shared by the certificate-status service: paths and their OCSP.

Sans-IO helpers: certificates and DER responses in, a verified result out or
an exception. PROTOCOLS.md §8: a certificate is in good standing when it
chains to an approved CA and every certificate of the path except the trusted
top CA has a ``good`` OCSP response no older than ``ocspFreshnessSeconds``,
signed by an authorised responder.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence

from cryptography import x509

from jplink.errors import JPLinkError, OcspError, RevokedCertificate
from jplink.globalconf import SharedParameters
from jplink.security.certpath import build_certificate_path
from jplink.security.ocsp import DEFAULT_CLOCK_SKEW, OcspVerified, verify_ocsp_response

from .ocsp_cache import responder_certs, single_for

__all__ = [
    "freshness",
    "path_of",
    "valid_window",
    "verify_among",
    "verify_path_ocsp",
]


def freshness(conf: SharedParameters) -> dt.timedelta:
    """``ocspFreshnessSeconds`` of the configuration as a timedelta."""
    return dt.timedelta(seconds=conf.global_settings.ocsp_freshness_seconds)


def path_of(
    cert: x509.Certificate,
    conf: SharedParameters,
    now: dt.datetime,
    extra: Sequence[x509.Certificate] = (),
) -> tuple[x509.Certificate, ...]:
    """The path from ``cert`` to an approved top CA, checked at ``now``.

    Raises:
        CertificateValidationError: no path to an approved CA.
        CertificateExpired: a certificate on the path is not valid at ``now``.
    """
    return build_certificate_path(
        cert,
        anchors=conf.trusted_ca_certs(),
        intermediates=(*conf.intermediate_ca_certs(), *extra),
        at=now,
    )


def verify_path_ocsp(
    path: Sequence[x509.Certificate],
    response_for: Callable[[x509.Certificate], bytes | None],
    conf: SharedParameters,
    now: dt.datetime,
) -> tuple[OcspVerified, ...]:
    """Verify the OCSP response of every certificate of ``path`` but the top CA.

    Args:
        path: leaf first, approved top CA last (from :func:`path_of`).
        response_for: the DER response to check for a certificate, or None.
        conf: the current shared parameters (responders, freshness).
        now: the validation time.

    Returns:
        The verified statuses, leaf first.

    Raises:
        OcspError: a certificate has no response (code ``InvalidOcspResponse``)
            or an unusable one.
        OcspStale: a response is older than ``ocspFreshnessSeconds``.
        RevokedCertificate, OcspUnknownStatus: not ``good``.
        InvalidSignature: a response signature does not verify.
    """
    verified: list[OcspVerified] = []
    for cert, issuer in itertools.pairwise(path):
        der = response_for(cert)
        if der is None:
            raise OcspError(
                f"No OCSP response for {cert.subject.rfc4514_string()}",
                detail={"serial": f"{cert.serial_number:x}"},
            )
        verified.append(
            verify_ocsp_response(
                der,
                cert=cert,
                issuer=issuer,
                now=now,
                max_age=freshness(conf),
                trusted_responders=responder_certs(conf, issuer),
            )
        )
    return tuple(verified)


def verify_among(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    candidates: Sequence[bytes],
    conf: SharedParameters,
    now: dt.datetime,
) -> OcspVerified:
    """The one good response for ``cert`` among several (a signature's OCSP).

    A verified ``revoked`` answer wins over any ``good`` one: revocation is
    final.

    Raises:
        RevokedCertificate: an authentic response says revoked.
        OcspError, OcspStale, InvalidSignature, ...: no candidate verifies
            (the first candidate's error is raised; OcspError when none names
            ``cert``).
    """
    good: OcspVerified | None = None
    first_error: JPLinkError | None = None
    for der in candidates:
        try:
            if single_for(der, cert) is None:
                continue
            result = verify_ocsp_response(
                der,
                cert=cert,
                issuer=issuer,
                now=now,
                max_age=freshness(conf),
                trusted_responders=responder_certs(conf, issuer),
            )
        except RevokedCertificate:
            raise
        except JPLinkError as exc:
            first_error = first_error or exc
            continue
        good = good or result
    if good is not None:
        return good
    if first_error is not None:
        raise first_error
    raise OcspError(
        f"No OCSP response for {cert.subject.rfc4514_string()}",
        detail={"serial": f"{cert.serial_number:x}"},
    )


def valid_window(
    path: Sequence[x509.Certificate],
    statuses: Sequence[OcspVerified],
    conf: SharedParameters,
) -> tuple[dt.datetime, dt.datetime]:
    """The times between which a checked path and its statuses stay acceptable.

    Used to reuse a checked result without verifying again: outside the
    window the full check runs (and raises).
    """
    max_age = freshness(conf)
    start = max(
        [s.this_update - DEFAULT_CLOCK_SKEW for s in statuses]
        + [c.not_valid_before_utc for c in path]
    )
    ends = [s.this_update + max_age for s in statuses]
    ends += [s.next_update + DEFAULT_CLOCK_SKEW for s in statuses if s.next_update]
    ends += [c.not_valid_after_utc for c in path]
    return start, min(ends)
