"""This server's own keys and certificates, checked for use (sign or auth).

A certificate is usable when it is active and not disabled, valid at ``now``,
chains to an approved CA (for signing: not an ``authenticationOnly`` one),
and the cache holds a ``good`` OCSP response no older than
``ocspFreshnessSeconds`` for it and each intermediate CA (PROTOCOLS.md §8:
the signer stops when its responses get too old). An authentication
certificate must also be registered to this server in the global
configuration (its ``authCertHash``): peers check exactly that.

Signing certificates need no registration with the central server (X-Road
marks them registered on import), so ``saved`` and ``registered`` both count.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import select

from jplink.errors import CertificateValidationError, JPLinkError, NotFound
from jplink.globalconf import SharedParameters, auth_cert_hash
from jplink.identifiers import SecurityServerId
from jplink.security.certs import CertProfile
from jplink.security.ocsp import OcspVerified
from jplink.storage import Database

from .identity import load_identity
from .models import Certificate, TokenKey
from .ocsp_cache import cached_responses, cert_sha256
from .ocsp_checks import path_of, verify_path_ocsp
from .states import CertStatus

__all__ = ["CheckedCertificate", "checked_own_certificate"]

_USABLE = (CertStatus.SAVED.value, CertStatus.REGISTERED.value)


@dataclass(frozen=True, slots=True)
class CheckedCertificate:
    """An own certificate that passed every check at ``now``.

    Attributes:
        key_id: the token key's id (to load the private key).
        cert: the certificate.
        path: leaf first, approved top CA last.
        statuses: verified OCSP statuses of ``path[:-1]``, leaf first.
        server_id: this server.
    """

    key_id: str
    cert: x509.Certificate
    path: tuple[x509.Certificate, ...]
    statuses: tuple[OcspVerified, ...]
    server_id: SecurityServerId


def _check_registered(
    conf: SharedParameters,
    usage: CertProfile,
    cert: x509.Certificate,
    path: tuple[x509.Certificate, ...],
    server_id: SecurityServerId,
) -> None:
    if usage is CertProfile.AUTH:
        try:
            hashes = conf.server(server_id).auth_cert_hashes
        except NotFound:
            hashes = ()
        if auth_cert_hash(cert) not in hashes:
            raise CertificateValidationError(
                f"The authentication certificate is not registered to {server_id} "
                "in the global configuration",
                code="CertNotRegistered",
            )
        return
    ca = conf.approved_ca_for_issuer(path[-1])
    if ca.authentication_only:
        # PROTOCOLS.md §8: "authenticationOnly=true marks a CA whose certs may
        # be used only for TLS, not for signing."
        raise CertificateValidationError(
            f"{ca.name} issues authentication certificates only",
            code="IncorrectCertificate",
        )


async def checked_own_certificate(
    db: Database,
    conf: SharedParameters,
    usage: CertProfile,
    member: str | None,
    *,
    now: dt.datetime,
) -> CheckedCertificate:
    """The newest usable own certificate of ``usage`` (for ``member``).

    Args:
        db: the server's database.
        conf: the current, verified shared parameters.
        usage: ``sign`` or ``auth``.
        member: the text form of the signing member (None for ``auth``).
        now: the validation time.

    Returns:
        The checked certificate with its path and OCSP statuses.

    Raises:
        NotFound: code ``CertNotFound`` when no active certificate exists.
        CertificateValidationError, CertificateExpired: not registered, no
            path to an approved CA, expired (for the newest candidate).
        OcspError, OcspStale, RevokedCertificate, OcspUnknownStatus: its
            cached OCSP is missing, too old or not ``good``.
    """
    async with db.transaction() as session:
        server_id = (await load_identity(session)).server_id
        query = (
            select(Certificate, TokenKey.key_id)
            .join(TokenKey)
            .where(
                Certificate.usage == usage.value,
                Certificate.active.is_(True),
                Certificate.status.in_(_USABLE),
            )
            .order_by(Certificate.imported_at.desc(), Certificate.id.desc())
        )
        if member is not None:
            query = query.where(Certificate.member == member)
        rows = [(r.cert_der, key_id) for r, key_id in await session.execute(query)]
        if not rows:
            raise NotFound(
                f"No active {usage.value} certificate"
                + (f" for {member}" if member else ""),
                code="CertNotFound",
            )
        candidates = []
        for der, key_id in rows:
            cert = x509.load_der_x509_certificate(der)
            if cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                candidates.append((cert, key_id))
        if not candidates:  # report the newest one's expiry
            candidates = [(x509.load_der_x509_certificate(rows[0][0]), rows[0][1])]
        paths = []
        for cert, _key in candidates:
            try:
                paths.append(path_of(cert, conf, now))
            except JPLinkError:
                paths.append((cert,))
        wanted = {cert_sha256(c) for p in paths for c in p}
        cached = {
            d: r.response_der
            for d, r in (await cached_responses(session, wanted)).items()
        }
    first_error: JPLinkError | None = None
    for (cert, key_id), path in zip(candidates, paths, strict=True):
        try:
            if len(path) == 1:
                path = path_of(cert, conf, now)  # raises the real reason
            _check_registered(conf, usage, cert, path, server_id)
            statuses = verify_path_ocsp(
                path, lambda c: cached.get(cert_sha256(c)), conf, now
            )
        except JPLinkError as exc:
            first_error = first_error or exc
            continue
        return CheckedCertificate(key_id, cert, path, statuses, server_id)
    assert first_error is not None  # candidates is never empty
    raise first_error
