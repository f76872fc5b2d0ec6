"""Onboarding: this server's requests to the central server, and their outcome.

Every step goes through the central server's public interfaces, never its
database (issue #7):

1. :func:`submit_csr` sends a stored CSR to the registration API
   (``POST /register/v1/certificate-requests``) and keeps the request id and
   the requester token (a secret: kept in the database only, never shown);
2. :func:`fetch_certificate` reads the request's state; once approved it
   imports the certificate with all of
   :func:`~security_server.certificates.import_certificate`'s checks;
3. :func:`register_auth_cert` sends ``authCertReg`` (PR-MSERV §2.3) straight
   to ``authCertRegServiceAddress``; the certificate becomes
   ``registration-in-progress``;
4. :func:`register_client` / :func:`unregister_client` send ``clientReg`` /
   ``clientDeletion`` as X-Road messages through this server's own client
   proxy (which must be running: ``jplink ss serve``);
5. :func:`sync_states`, after each global-configuration download, moves what
   the configuration now lists (or no longer lists) to its final state.

Steps 1 and 2 live in :mod:`security_server.csr_registration`, step 3 in
:mod:`security_server.auth_cert_registration`, step 4 in
:mod:`security_server.client_registration` (3 and 4 share
:mod:`security_server.management_client`) and step 5 in
:mod:`security_server.registration_sync`; all are re-exported here, so
callers (the CLI, the admin API) import one module.
Each state change and its audit row are written in one transaction. Nothing
is written when a request is refused or cannot be delivered.
"""

from __future__ import annotations

from .auth_cert_registration import register_auth_cert
from .client_registration import register_client, unregister_client
from .csr_registration import (
    CsrFetchResult,
    CsrSubmission,
    fetch_certificate,
    submit_csr,
)
from .management_client import (
    ManagementSubmission,
    load_configuration,
    record_submission,
)
from .registration_sync import StateChange, sync_states

__all__ = [
    "CsrFetchResult",
    "CsrSubmission",
    "ManagementSubmission",
    "StateChange",
    "fetch_certificate",
    "load_configuration",
    "record_submission",
    "register_auth_cert",
    "register_client",
    "submit_csr",
    "sync_states",
    "unregister_client",
]
