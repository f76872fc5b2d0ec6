"""What this server's management requests (PR-MSERV) share: built, signed, recorded.

The requests themselves live in :mod:`security_server.auth_cert_registration`
(``authCertReg``, straight to the central server over pinned https) and
:mod:`security_server.client_registration` (``clientReg`` /
``clientDeletion``, through this server's own client proxy). Both read the
saved configuration with :func:`load_configuration`, sign with
:func:`member_signer` and record what the central server accepted with
:func:`record_submission` (table ``central_request``): the state change is
written with its audit row in one transaction, and a refused or undelivered
request changes nothing. The public names are re-exported by
:mod:`security_server.registration`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.clients.globalconf import LoadedConfiguration, load_saved_configuration
from jplink.errors import GlobalConfError, InvalidRequest
from jplink.globalconf import SharedParameters
from jplink.identifiers import ClientId
from jplink.protocol.management import ManagementSigner
from jplink.security.certs import CertProfile
from jplink.security.keys import PrivateKey
from jplink.storage import Database

from . import audit
from .config import SecurityServerConfig
from .identity import read_anchor
from .keys import load_private_key
from .models import CentralRequest
from .own_material import checked_own_certificate
from .softtoken import UnlockedToken
from .states import CentralRequestKind, CentralRequestStatus

__all__ = [
    "ManagementSubmission",
    "client_proxy_url",
    "latest_request",
    "load_configuration",
    "member_signer",
    "record_submission",
    "rsa_key",
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
