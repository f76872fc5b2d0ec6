"""The authentication certificate's OCSP status for ``authCertReg``.

An X-Road 7 security server sends ``authCertReg`` with the PR-MSERV §2.3
parts only: an OCSP response for the owner's signing certificate, none for the
authentication certificate being registered. The JP-LINK central server still
refuses to register an auth certificate without a fresh GOOD status, so for
that layout it asks the issuing CA's OCSP responder itself: the responder URL
is the one the registry's approved-CA data gives for the issuer (top CA or
intermediate, shared-params ``ocsp/url``), never one read from the
certificate. The caller verifies the answer with
:func:`jplink.protocol.management.verify_management_request`
(``auth_cert_ocsp=``), which fails closed on anything but a fresh GOOD status.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding

from jplink.clients.ocsp import OcspClient
from jplink.errors import OcspError
from jplink.protocol.management import AuthCertStatusQuery
from jplink.security.ocsp import build_ocsp_request
from jplink.storage import Database

from . import trust

__all__ = ["fetch_auth_cert_ocsp", "ocsp_responder_url"]


async def ocsp_responder_url(db: Database, query: AuthCertStatusQuery) -> str:
    """The OCSP URL the registry lists for the auth certificate's issuer.

    Args:
        db: the central server's database.
        query: the certificate and its issuer (from ``auth_cert_status_query``).

    Returns:
        The responder URL of the approved CA (or intermediate) that issued it.

    Raises:
        OcspError: the issuer is not an approved CA certificate, or it has no
            OCSP responder configured (fail closed: no status, no registration).
        StorageError: the database failed.
    """
    issuer_der = query.issuer.public_bytes(Encoding.DER)
    for ca in await trust.list_approved_cas(db):
        for info in (ca.top_ca, *ca.intermediates):
            if info.cert_der != issuer_der:
                continue
            if not info.ocsp_url:
                raise OcspError(
                    f"Approved CA {ca.name!r} has no OCSP responder for "
                    f"{query.issuer.subject.rfc4514_string()}: the status of the "
                    "authentication certificate cannot be checked",
                    code="CertValidation",
                )
            return info.ocsp_url
    raise OcspError(
        f"{query.issuer.subject.rfc4514_string()} is not an approved CA certificate",
        code="CertValidation",
    )


async def fetch_auth_cert_ocsp(
    db: Database, client: OcspClient, query: AuthCertStatusQuery
) -> bytes:
    """Ask the issuer's OCSP responder about the authentication certificate.

    The request has a SHA-256 CertID and no nonce (X-Road's responders answer
    with pre-produced responses; freshness is checked against
    ``ocspFreshnessSeconds`` instead).

    Args:
        db: the central server's database (approved CAs).
        client: the OCSP transport.
        query: the certificate and its issuer.

    Returns:
        The responder's DER answer, not yet verified.

    Raises:
        OcspError: no approved responder for the issuer.
        TransportError: the responder could not be reached or did not answer
            with an OCSP response.
        StorageError: the database failed.
    """
    url = await ocsp_responder_url(db, query)
    return await client.fetch(url, build_ocsp_request(query.cert, query.issuer))
