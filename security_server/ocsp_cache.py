"""The OCSP response cache (table ``ocsp_response``): own and peers' responses.

One row per certificate (keyed by the hex SHA-256 of its DER) holds the
newest *authentic* response the server has seen: signed by an authorised
responder for that certificate. A response only replaces a cached one when
its ``thisUpdate`` is later, so a replayed or stale answer never overwrites a
good one. Whether a cached response is still good enough is decided each time
it is used, with :func:`jplink.security.ocsp.verify_ocsp_response` and the
caller's ``now``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import CertificateValidationError
from jplink.globalconf import SharedParameters
from jplink.security.ocsp import (
    OcspCertStatus,
    OcspSingleResponse,
    parse_ocsp_response,
)

from .audit import aware
from .models import OcspResponse

__all__ = [
    "cached_responses",
    "cert_sha256",
    "responder_certs",
    "single_for",
    "store_response",
]


def cert_sha256(cert: x509.Certificate) -> str:
    """The cache key of a certificate: hex SHA-256 of its DER."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def responder_certs(
    conf: SharedParameters, issuer: x509.Certificate
) -> tuple[x509.Certificate, ...]:
    """The OCSP responder certificates the configuration lists for ``issuer``.

    An issuer the configuration does not list gets none: then only the CA
    itself or its delegated responder (EKU ocspSigning) is accepted.
    """
    try:
        responders = conf.ocsp_responders(issuer)
    except CertificateValidationError:
        return ()
    return tuple(r.cert for r in responders if r.cert is not None)


def single_for(der: bytes, cert: x509.Certificate) -> OcspSingleResponse | None:
    """The SingleResponse of a (verified) response that is about ``cert``."""
    for single in parse_ocsp_response(der).responses:
        if single.serial_number == cert.serial_number:
            return single
    return None


async def cached_responses(
    session: AsyncSession, digests: Iterable[str]
) -> dict[str, OcspResponse]:
    """The cached rows for some certificates, by hex SHA-256."""
    wanted = sorted(set(digests))
    if not wanted:
        return {}
    rows = await session.execute(
        select(OcspResponse).where(OcspResponse.cert_sha256.in_(wanted))
    )
    return {row.cert_sha256: row for row in rows.scalars()}


def _supersedes(
    single: OcspSingleResponse, row: OcspResponse, cert: x509.Certificate
) -> bool:
    # A later thisUpdate wins; an authentic "revoked" also wins over a
    # "good" of the same second (revocation is final, replaying it is moot).
    if single.this_update > aware(row.this_update):
        return True
    old = single_for(row.response_der, cert)
    revoked = OcspCertStatus.REVOKED
    return single.status is revoked and (old is None or old.status is not revoked)


async def store_response(
    session: AsyncSession,
    cert: x509.Certificate,
    der: bytes,
    *,
    now: dt.datetime,
    existing: Sequence[OcspResponse] = (),
) -> bool:
    """Cache an authentic response for ``cert`` unless a newer one is cached.

    The caller has verified ``der`` (signature, responder, CertID); only the
    dates are read here.

    Args:
        session: an open transaction.
        cert: the certificate the response is about.
        der: the response.
        now: when it was fetched.
        existing: the row already loaded for ``cert``, if the caller has it.

    Returns:
        True when the response was stored, False when the cache already held
        one with the same or a later ``thisUpdate`` (unless the new one is the
        first ``revoked`` answer).
    """
    single = single_for(der, cert)
    if single is None:
        raise ValueError("the response does not name the certificate")
    parsed = parse_ocsp_response(der)
    digest = cert_sha256(cert)
    row = next((r for r in existing if r.cert_sha256 == digest), None)
    if row is None:
        row = (await cached_responses(session, [digest])).get(digest)
    if row is not None and not _supersedes(single, row, cert):
        return False
    if row is None:
        row = OcspResponse(cert_sha256=digest)
        session.add(row)
    row.response_der = der
    row.produced_at = parsed.produced_at or single.this_update
    row.this_update = single.this_update
    row.next_update = single.next_update
    row.fetched_at = now
    return True
