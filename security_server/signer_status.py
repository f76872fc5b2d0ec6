"""A message signer's certificate, with the OCSP responses its signature embeds.

PROTOCOLS.md §6.4 and §8, sans-IO: given the global configuration and a time,
:func:`verify_signer` returns a verified :class:`SignerStatus` or raises. The
signature's own check is :mod:`jplink.security.signature`; the cache of
signers that passed is :class:`.certstatus.CertificateStatus`'s.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from jplink.errors import CertificateValidationError
from jplink.globalconf import SharedParameters
from jplink.identifiers import ClientId
from jplink.security.certs import CertProfile, member_subject_from_certificate
from jplink.security.ocsp import OcspVerified

from .ocsp_checks import path_of, verify_among

__all__ = ["SignerStatus", "verify_signer"]


@dataclass(frozen=True, slots=True)
class SignerStatus:
    """A message signer found in good standing at a time.

    Attributes:
        member: the member the certificate belongs to.
        cert: the signing certificate.
        path: leaf first, approved top CA last.
        statuses: the verified ``good`` statuses of ``path[:-1]``, leaf first.
    """

    member: ClientId
    cert: x509.Certificate
    path: tuple[x509.Certificate, ...]
    statuses: tuple[OcspVerified, ...]


def verify_signer(
    cert: x509.Certificate,
    ocsp_ders: Sequence[bytes],
    member: ClientId,
    conf: SharedParameters,
    now: dt.datetime,
) -> SignerStatus:
    """Check ``cert`` as the signer of a message from ``member`` at ``now``.

    Raises:
        CertificateValidationError: code ``MalformedSignature`` without
            nonRepudiation; ``IncorrectCertificate`` for an
            authentication-only CA or a subject naming another member;
            ``CertValidation`` for no path to an approved CA.
        CertificateExpired, RevokedCertificate, OcspError, OcspStale,
        OcspUnknownStatus, InvalidSignature: as
            :func:`.ocsp_checks.verify_among` and :func:`.ocsp_checks.path_of`.
    """
    _check_sign_usage(cert)
    path = path_of(cert, conf, now)
    ca = conf.approved_ca_for_issuer(path[-1])
    if ca.authentication_only:
        raise CertificateValidationError(
            f"{ca.name} issues authentication certificates only",
            code="IncorrectCertificate",
        )
    statuses = tuple(
        verify_among(link, issuer, ocsp_ders, conf, now)
        for link, issuer in itertools.pairwise(path)
    )
    subject = member_subject_from_certificate(cert, CertProfile.SIGN)
    named = ClientId(subject.instance, subject.member_class, subject.member_code)
    # PROTOCOLS.md §6.4: the signer certificate must belong to the
    # ``client`` member, by the certificate profile.
    if named != member.member:
        raise CertificateValidationError(
            f"The signer certificate names {named}, not {member.member}",
            code="IncorrectCertificate",
            detail={"signer": str(named), "client": str(member)},
        )
    return SignerStatus(member.member, cert, path, statuses)


def _check_sign_usage(cert: x509.Certificate) -> None:
    # PROTOCOLS.md §6.4: "It must have the nonRepudiation key-usage bit;
    # otherwise MalformedSignature".
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.content_commitment:
        raise CertificateValidationError(
            "The signer certificate lacks the nonRepudiation key usage",
            code="MalformedSignature",
        )
