"""``authCertReg``: registering this server's auth certificate (PR-MSERV §2.3).

The request carries the auth key's proof of possession and the owner's
signature and goes straight to ``authCertRegServiceAddress``, pinned to
``authCertRegServiceCert`` over https
(:func:`~security_server.management_transport.tls_pin`). The shared steps
(configuration, signer, records) are those of
:mod:`security_server.management_client`; the public name is re-exported by
:mod:`security_server.registration`.
"""

from __future__ import annotations

import datetime as dt
import uuid

import aiohttp
from cryptography import x509
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, InvalidRequest
from jplink.protocol.management import (
    ManagementRequest,
    ManagementRequestType,
    ManagementSigner,
    build_management_message,
    build_management_request,
    check_address,
)
from jplink.security.certs import CertProfile
from jplink.storage import Database

from . import audit
from .certificates import _find as find_certificate
from .config import SecurityServerConfig
from .identity import load_identity
from .keys import load_private_key
from .management_client import (
    ManagementSubmission,
    load_configuration,
    member_signer,
    record_submission,
    rsa_key,
)
from .management_transport import post_management_request, tls_pin
from .models import Certificate
from .softtoken import unlock
from .states import CentralRequestKind, CentralRequestStatus, CertStatus

__all__ = ["register_auth_cert"]

_K = CentralRequestKind
_S = CentralRequestStatus


async def _auth_cert_row(s: AsyncSession, cert_sha256: str) -> tuple[Certificate, str]:
    row, key_id = await find_certificate(s, cert_sha256)
    if row.usage != CertProfile.AUTH.value:
        raise InvalidRequest(
            f"{row.cert_sha256} is not an authentication certificate",
            code="WrongCertUsage",
        )
    return row, key_id


def _check_host(address: str) -> str:
    host, sep, port = address.rpartition(":")
    if not sep or "]" in port:
        return check_address(address)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidRequest(f"Invalid port in server address {address!r}")
    check_address(host.strip("[]"))
    return address


async def register_auth_cert(
    db: Database,
    config: SecurityServerConfig,
    cert_sha256: str,
    *,
    address: str,
    pin: str,
    session: aiohttp.ClientSession,
    actor: str,
    now: dt.datetime,
) -> ManagementSubmission:
    """Send ``authCertReg`` for an imported auth certificate (PR-MSERV §2.3).

    The request carries the auth key's signature (proof of possession), the
    owner's signature, both certificates and the owner certificate's OCSP
    response, and goes directly to ``authCertRegServiceAddress`` (pinned to
    ``authCertRegServiceCert`` over https, see
    :func:`~security_server.management_transport.tls_pin`).

    Args:
        db: the server's database.
        config: the server's configuration.
        cert_sha256: hex SHA-256 of the auth certificate (or a unique prefix).
        address: this server's address for peers (host name or IP).
        pin: the token PIN.
        session: an aiohttp session.
        actor: who (audit log).
        now: when.

    Returns:
        The central request id; the certificate is ``registration-in-progress``.

    Raises:
        Unauthenticated: code ``PinIncorrect``.
        NotFound: ``CertificateNotFound`` (no single certificate matches
            ``cert_sha256``, a unique prefix of at least 8 digits),
            ``CertNotFound`` (no signing certificate of the owner),
            ``ServerNotInitialized``.
        Conflict: code ``WrongCertState`` (not ``saved``).
        GlobalConfError: no valid downloaded configuration.
        InvalidRequest: a bad address; non-RSA keys.
        CertificateValidationError, OcspError ...: the owner's signing
            certificate is not usable.
        ConfigurationError: https address without a published certificate.
        TransportError, SoapFault: not delivered, or refused by the central
            server; no state changes then.
        StorageError: the database failed.
    """
    loaded = load_configuration(config, now=now)
    assert loaded.private is not None
    service = loaded.private.management_service
    pinned = tls_pin(
        service.auth_cert_reg_service_address, service.auth_cert_reg_service_cert
    )
    address = _check_host(address)
    async with db.transaction() as s:
        unlocked = await unlock(s, pin)
        identity = await load_identity(s)
        row, key_id = await _auth_cert_row(s, cert_sha256)
        if row.status != CertStatus.SAVED.value:
            raise Conflict(
                f"The certificate is {row.status}, not saved", code="WrongCertState"
            )
        sha, der = row.cert_sha256, row.cert_der
    owner = await member_signer(
        db, config, unlocked, loaded.shared, identity.owner, now=now
    )
    auth_key = rsa_key(
        await load_private_key(db, config.token_dir, unlocked, key_id),
        "authentication key",
    )
    request = ManagementRequest(
        ManagementRequestType.AUTH_CERT_REG,
        identity.server_id,
        address=address,
        auth_cert=der,
    )
    soap = build_management_request(
        request, service_provider=service.provider_id, message_id=str(uuid.uuid4())
    )
    ctype, body = build_management_message(
        soap,
        request.type,
        member=owner,
        auth=ManagementSigner(auth_key, x509.load_der_x509_certificate(der)),
    )
    answer = await post_management_request(
        session,
        service.auth_cert_reg_service_address,
        ctype,
        body,
        request.type,
        pin=pinned,
        timeout=config.timeouts.read_seconds,
    )
    assert answer.request_id is not None
    state = CertStatus.REGISTRATION_IN_PROGRESS.value
    async with db.transaction() as s:
        row, _key = await _auth_cert_row(s, sha)
        before, row.status = row.status, state
        record_submission(s, actor, _K.AUTH_CERT_REG, sha, answer.request_id, now=now)
        audit.record(
            s,
            actor=actor,
            action="cert.state",
            target=sha,
            now=now,
            detail={"from": before, "to": state},
        )
    return ManagementSubmission(_K.AUTH_CERT_REG, sha, answer.request_id, state)
