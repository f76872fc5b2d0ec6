"""This server's management requests (PR-MSERV): built, signed, sent, recorded.

- :func:`register_auth_cert`: ``authCertReg`` (PR-MSERV §2.3) straight to
  ``authCertRegServiceAddress``, pinned to ``authCertRegServiceCert`` over
  https (:func:`~security_server.central_client.tls_pin`);
- :func:`register_client` / :func:`unregister_client`: ``clientReg`` /
  ``clientDeletion`` as X-Road messages through this server's own client
  proxy (the running ``jplink ss serve``), which signs and sends them to the
  management security server; that one forwards them to the central server.

Every accepted request is recorded (:func:`record_submission`, table
``central_request``) and the state change written with its audit row in one
transaction; a refused or undelivered request changes nothing. The public
names are re-exported by :mod:`security_server.registration`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.clients.globalconf import LoadedConfiguration, load_saved_configuration
from jplink.errors import Conflict, GlobalConfError, InvalidRequest
from jplink.globalconf import SharedParameters
from jplink.identifiers import ClientId
from jplink.protocol.management import (
    ManagementRequest,
    ManagementRequestType,
    ManagementSigner,
    build_management_message,
    build_management_request,
    check_address,
)
from jplink.security.certs import CertProfile
from jplink.security.keys import PrivateKey
from jplink.storage import Database

from . import audit
from .central_client import post_management_request, tls_pin
from .certificates import _find as find_certificate
from .clients import find_client
from .config import SecurityServerConfig
from .identity import load_identity, read_anchor
from .keys import load_private_key
from .models import CentralRequest, Certificate
from .own_material import checked_own_certificate
from .softtoken import UnlockedToken, unlock
from .states import CentralRequestKind, CentralRequestStatus, CertStatus, ClientState

__all__ = [
    "ManagementSubmission",
    "client_proxy_url",
    "latest_request",
    "load_configuration",
    "member_signer",
    "record_submission",
    "register_auth_cert",
    "register_client",
    "rsa_key",
    "unregister_client",
]

_K = CentralRequestKind
_S = CentralRequestStatus


@dataclass(frozen=True, slots=True)
class ManagementSubmission:
    """A management request the central server accepted (pending approval).

    Attributes:
        kind: ``authCertReg``, ``clientReg`` or ``clientDeletion``.
        target: the auth certificate's hex SHA-256, or the client.
        request_id: the central server's request number.
        state: the local state now (``registration-in-progress`` ...).
    """

    kind: CentralRequestKind
    target: str
    request_id: int
    state: str


def load_configuration(
    config: SecurityServerConfig, *, now: dt.datetime
) -> LoadedConfiguration:
    """The saved, unexpired global configuration with its private parameters.

    Raises:
        NotFound: code ``ServerNotInitialized`` (no anchor).
        GlobalConfError: nothing downloaded yet, damaged, expired (run
            ``jplink ss conf download``), or no private parameters.
    """
    instance = read_anchor(config).instance_identifier
    loaded = load_saved_configuration(
        config.globalconf.directory, now=now, instance=instance
    )
    if loaded.private is None:
        raise GlobalConfError(
            "The saved global configuration has no private parameters "
            "(managementService); download the internal configuration"
        )
    return loaded


async def latest_request(
    session: AsyncSession, kind: _K, target: str
) -> CentralRequest | None:
    """The newest recorded request of ``kind`` for ``target``, if any."""
    return (
        await session.execute(
            select(CentralRequest)
            .where(CentralRequest.kind == kind.value, CentralRequest.target == target)
            .order_by(CentralRequest.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


def record_submission(
    session: AsyncSession,
    actor: str,
    kind: CentralRequestKind,
    target: str,
    central_id: int,
    *,
    now: dt.datetime,
    token: str | None = None,
    central_url: str | None = None,
) -> None:
    """Add the row of an accepted request and its audit row to ``session``."""
    session.add(
        CentralRequest(
            kind=kind.value,
            target=target,
            central_id=str(central_id),
            requester_token=token,
            central_url=central_url,
            status=_S.SUBMITTED.value,
            reason="",
            created_at=now,
            updated_at=now,
        )
    )
    audit.record(
        session,
        actor=actor,
        action=f"central.{kind.value}",
        target=target,
        now=now,
        detail={"requestId": central_id},
    )


def client_proxy_url(config: SecurityServerConfig) -> str:
    """This server's own client proxy (HTTP), where management requests go.

    A wildcard listen address is reached on loopback.
    """
    host = config.client_proxy.host
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.client_proxy.http_port}/"


def rsa_key(key: PrivateKey, what: str) -> rsa.RSAPrivateKey:
    """``key`` if it is RSA.

    Raises:
        InvalidRequest: code ``UnsupportedKeyType`` for any other key: PR-MSERV
            §2.1 allows only ``SHA*withRSA`` (and ``...andMGF1``) signatures
            in management requests.
    """
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidRequest(
            f"The {what} is not an RSA key; management requests are signed "
            "with RSA only (PR-MSERV §2.1)",
            code="UnsupportedKeyType",
        )
    return key


async def member_signer(
    db: Database,
    config: SecurityServerConfig,
    unlocked: UnlockedToken,
    shared: SharedParameters,
    member: ClientId,
    *,
    now: dt.datetime,
) -> ManagementSigner:
    """The signing key, certificate and fresh OCSP response of ``member``.

    The certificate passes the checks the proxies make before signing
    (:func:`~security_server.own_material.checked_own_certificate`: active,
    valid, chains to an approved CA, cached ``good`` OCSP response no older
    than ``ocspFreshnessSeconds``), since the central server checks the same.

    Raises:
        NotFound: code ``CertNotFound`` (no signing certificate for the
            member) or ``KeyNotFound``.
        CertificateValidationError, CertificateExpired, OcspError, OcspStale,
        RevokedCertificate, OcspUnknownStatus: the certificate is not usable
            (run ``jplink ss certs ocsp-refresh`` for a missing response).
        Unauthenticated: code ``PinIncorrect``.
        InvalidRequest: code ``UnsupportedKeyType`` (not RSA).
    """
    checked = await checked_own_certificate(
        db, shared, CertProfile.SIGN, str(member.member), now=now
    )
    key = await load_private_key(db, config.token_dir, unlocked, checked.key_id)
    return ManagementSigner(
        rsa_key(key, f"signing key of {member.member}"),
        checked.cert,
        checked.statuses[0].der,
    )


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
    :func:`~security_server.central_client.tls_pin`).

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


async def _send_client_request(
    db: Database,
    config: SecurityServerConfig,
    client_id: ClientId,
    kind: CentralRequestKind,
    *,
    allowed: tuple[ClientState, ...],
    new_state: ClientState,
    pin: str | None,
    session: aiohttp.ClientSession,
    actor: str,
    now: dt.datetime,
) -> ManagementSubmission:
    loaded = load_configuration(config, now=now)
    assert loaded.private is not None
    provider = loaded.private.management_service.provider_id
    async with db.transaction() as s:
        unlocked = await unlock(s, pin) if pin is not None else None
        identity = await load_identity(s)
        row = await find_client(s, client_id)
        if client_id == identity.owner:
            # X-Road registers the owner with the server itself (authCertReg);
            # it is never registered or deleted as a client on its own.
            raise InvalidRequest(
                "The owner is not registered or deleted as a client",
                code="OwnerClient",
            )
        if row.state not in {a.value for a in allowed}:
            raise Conflict(
                f"{client_id} is {row.state}; {kind.value} needs "
                + " or ".join(a.value for a in allowed),
                code="WrongClientState",
            )
        name = row.name
    request_type = ManagementRequestType(kind.value)
    request = ManagementRequest(
        request_type,
        identity.server_id,
        client=client_id,
        subsystem_name=(name or None)
        if request_type is ManagementRequestType.CLIENT_REG
        and client_id.subsystem_code is not None
        else None,
    )
    # PR-MSERV: the header client is the server owner ("Sender does not match
    # server owner" otherwise); the client's owner member signs clientReg.
    soap = build_management_request(
        request, service_provider=provider, message_id=str(uuid.uuid4())
    )
    signer = None
    if unlocked is not None:
        signer = await member_signer(
            db, config, unlocked, loaded.shared, client_id.member, now=now
        )
    ctype, body = build_management_message(soap, request_type, member=signer)
    answer = await post_management_request(
        session,
        client_proxy_url(config),
        ctype,
        body,
        request_type,
        timeout=config.timeouts.read_seconds,
    )
    assert answer.request_id is not None
    async with db.transaction() as s:
        row = await find_client(s, client_id)
        before, row.state = row.state, new_state.value
        record_submission(s, actor, kind, str(client_id), answer.request_id, now=now)
        audit.record(
            s,
            actor=actor,
            action="client.state",
            target=str(client_id),
            now=now,
            detail={"from": before, "to": new_state.value},
        )
    return ManagementSubmission(
        kind, str(client_id), answer.request_id, new_state.value
    )


async def register_client(
    db: Database,
    config: SecurityServerConfig,
    client_id: ClientId,
    *,
    pin: str,
    session: aiohttp.ClientSession,
    actor: str,
    now: dt.datetime,
) -> ManagementSubmission:
    """Send ``clientReg`` through this server's client proxy.

    Signed by the signing key of the client's member (PROTOCOLS.md §10: "sig
    by the client's owner member signing key; its cert; its OCSP"), sent as an
    X-Road request with the server owner as header client and
    ``managementRequestServiceProviderId`` + ``clientReg`` as service. The
    running ``jplink ss serve`` signs it again as an X-Road message and
    forwards it to the management security server.

    Returns:
        The central request id; the client is ``registration-in-progress``.

    Raises:
        Unauthenticated: code ``PinIncorrect``.
        NotFound: ``ClientNotFound``; ``CertNotFound`` (no signing
            certificate of the client's member).
        Conflict: code ``WrongClientState`` (not ``saved``).
        InvalidRequest: code ``OwnerClient`` for the owner member.
        GlobalConfError, InvalidRequest, CertificateValidationError,
        OcspError ...: see :func:`register_auth_cert`.
        TransportError: the client proxy is not running or failed.
        SoapFault: refused on the way or by the central server.
        StorageError: the database failed.
    """
    return await _send_client_request(
        db,
        config,
        client_id,
        _K.CLIENT_REG,
        allowed=(ClientState.SAVED,),
        new_state=ClientState.REGISTRATION_IN_PROGRESS,
        pin=pin,
        session=session,
        actor=actor,
        now=now,
    )


async def unregister_client(
    db: Database,
    config: SecurityServerConfig,
    client_id: ClientId,
    *,
    session: aiohttp.ClientSession,
    actor: str,
    now: dt.datetime,
) -> ManagementSubmission:
    """Send ``clientDeletion`` (plain SOAP, no proof parts) via the client proxy.

    Returns:
        The central request id; the client is ``deletion-in-progress``.

    Raises:
        NotFound: code ``ClientNotFound``.
        Conflict: code ``WrongClientState`` (not registered or in
            registration).
        GlobalConfError, TransportError, SoapFault, StorageError: see
            :func:`register_client`.
    """
    return await _send_client_request(
        db,
        config,
        client_id,
        _K.CLIENT_DELETION,
        allowed=(ClientState.REGISTERED, ClientState.REGISTRATION_IN_PROGRESS),
        new_state=ClientState.DELETION_IN_PROGRESS,
        pin=None,
        session=session,
        actor=actor,
        now=now,
    )
