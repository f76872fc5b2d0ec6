"""X-Road management requests (PR-MSERV): bodies, signed multiparts, verification.

Sans-IO. A security server tells the central server about changes with one
SOAP request per operation (``authCertReg``, ``clientReg`` ...), whose body
follows ``request.xsd`` (namespace ``http://x-road.eu/xsd/xroad.xsd``) and
whose header names the management service (PROTOCOLS.md §10)::

    client  = the security server's owner member
    service = managementRequestServiceProviderId + serviceCode = operation

Most operations travel as ``multipart/related`` with proof parts after the
SOAP part; every signature is a detached PKCS#1 signature over the **raw bytes
of the SOAP part** with the algorithm named in ``signature-algorithm-id``:

- ``authCertReg`` (PR-MSERV §2.3): auth-key signature, owner signature, auth
  certificate, owner signing certificate, OCSP response of the owner
  certificate. The builder sends exactly that by default, as X-Road 7 does;
  JP-LINK may append the auth certificate's OCSP response as an optional 6th
  proof part. Our central server requires a fresh GOOD status for both
  certificates: from the extra part when present (verified), otherwise
  fetched by the caller from the CA's responder
  (:func:`auth_cert_status_query`, then ``auth_cert_ocsp=``).
- ``clientReg``, ``clientDisable``, ``clientEnable``, ``clientRename``,
  ``ownerChange``, ``addressChange``, ``maintenanceMode*``: signature, signing
  certificate, OCSP response.
- ``clientDeletion``, ``authCertDeletion``: plain ``text/xml``, no proof.

:func:`verify_management_request` is the trust decision: it returns a frozen
:class:`VerifiedManagementRequest` or raises.

The code lives in private modules by concept, every public name re-exported
here: :mod:`._management_body` (body fields, build and parse),
:mod:`._management_soap` (the SOAP envelope), :mod:`._management_proof`
(signature parts and the multipart) and :mod:`._management_verify` (the
central server's checks).
"""

from __future__ import annotations

from ._management_body import (
    ManagementRequest,
    ManagementRequestType,
    SignerRole,
    build_management_body,
    check_address,
    parse_management_body,
)
from ._management_proof import (
    SIGNATURE_ALGORITHM_HEADER,
    ManagementSignatureAlgorithm,
    ManagementSigner,
    build_management_message,
)
from ._management_soap import (
    build_management_request,
    build_management_response,
    parse_management_request,
    parse_management_response,
)
from ._management_verify import (
    AuthCertStatusQuery,
    ManagementTrust,
    VerifiedManagementRequest,
    auth_cert_status_query,
    verify_management_request,
)

__all__ = [
    "SIGNATURE_ALGORITHM_HEADER",
    "AuthCertStatusQuery",
    "ManagementRequest",
    "ManagementRequestType",
    "ManagementSignatureAlgorithm",
    "ManagementSigner",
    "ManagementTrust",
    "SignerRole",
    "VerifiedManagementRequest",
    "auth_cert_status_query",
    "build_management_body",
    "build_management_message",
    "build_management_request",
    "build_management_response",
    "check_address",
    "parse_management_body",
    "parse_management_request",
    "parse_management_response",
    "verify_management_request",
]
