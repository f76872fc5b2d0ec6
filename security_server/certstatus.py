"""Certificate status for the proxies: own signing/auth material, peers, signers.

:class:`CertificateStatus` is what the client and server proxies ask before
they sign, authenticate or trust anything. Every method returns a verified
frozen result or raises (fail closed):

- :meth:`~CertificateStatus.signing_material` and
  :meth:`~CertificateStatus.auth_material`: the private key, certificate,
  chain and cached OCSP responses of this server, refused as soon as a
  response is older than ``ocspFreshnessSeconds`` (PROTOCOLS.md §8) or the
  global configuration has expired;
- :meth:`~CertificateStatus.verify_peer`: a peer's TLS certificate
  (PROTOCOLS.md §5.1), with OCSP from the cache, the peer's port 5577 or the
  CA's responder, newly fetched responses cached;
- :meth:`~CertificateStatus.check_signer`: a message signer's certificate
  and the OCSP responses embedded in its signature (PROTOCOLS.md §6.4).

Checked material is reused (without another database round trip or
signature check) for at most ``reuse_seconds`` and never outside the window
in which its certificates and responses stay valid. A signer that passed is
remembered the same way (:class:`~.exchange_trust_cache.TrustCache`: keyed by
the exact certificate and response bytes and the member, only inside the
window of its responses' freshness, for one global configuration), because
every message of a sender carries the same certificate and responses until
the sender refreshes them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
from cryptography import x509

from jplink.clients.globalconf import LoadedConfiguration
from jplink.errors import (
    GlobalConfExpired,
    Unauthenticated,
)
from jplink.identifiers import ClientId, SecurityServerId
from jplink.security.certs import (
    CertProfile,
    certificate_der,
)
from jplink.security.keys import PrivateKey
from jplink.security.ocsp import OcspVerified
from jplink.security.tls import PeerIdentity
from jplink.storage import Database

from .config import SecurityServerConfig
from .exchange_trust_cache import TrustCache
from .keys import load_private_key
from .ocsp_checks import valid_window
from .own_material import CheckedCertificate, checked_own_certificate
from .peer_status import PeerStatus
from .signer_status import SignerStatus, verify_signer
from .single_flight import SingleFlight
from .softtoken import TokenLogin, UnlockedToken

__all__ = [
    "AuthMaterial",
    "CertificateStatus",
    "ConfProvider",
    "SignerStatus",
    "SigningMaterial",
]

#: Returns the current verified global configuration, or raises
#: GlobalConfExpired (e.g. a wrapper around ``load_saved_configuration``).
ConfProvider = Callable[[], LoadedConfiguration]


@dataclass(frozen=True, slots=True)
class SigningMaterial:
    """What signing a message for ``member`` needs, checked at a time.

    Attributes:
        member: the member whose key signs (a subsystem's member).
        key: the private signing key.
        cert: the signing certificate.
        chain: the issuing CA first, the approved top CA last.
        ocsp_ders: DER ``good`` OCSP responses of ``cert`` and each
            intermediate CA (``(cert, *chain[:-1])``), in that order: what
            ``xades:EncapsulatedOCSPValue`` embeds.
        ocsp: the verified status of ``cert``.
    """

    member: ClientId
    key: PrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    ocsp_ders: tuple[bytes, ...]
    ocsp: OcspVerified


@dataclass(frozen=True, slots=True)
class AuthMaterial:
    """This server's TLS identity, checked at a time.

    Attributes:
        server_id: this security server.
        key: the private authentication key.
        cert: the authentication certificate.
        chain: the issuing CA first, the approved top CA last.
        ocsp_der: the DER ``good`` OCSP response of ``cert`` (the first OCSP
            part of a transport message).
        chain_ocsp_ders: responses for the intermediate CAs, in chain order.
        ocsp: the verified status of ``cert``.
    """

    server_id: SecurityServerId
    key: PrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    ocsp_der: bytes
    chain_ocsp_ders: tuple[bytes, ...]
    ocsp: OcspVerified

    @property
    def ocsp_ders(self) -> tuple[bytes, ...]:
        """Every OCSP response of the chain, ``ocsp_der`` first."""
        return (self.ocsp_der, *self.chain_ocsp_ders)


@dataclass(frozen=True, slots=True)
class _Reusable:
    checked: CheckedCertificate
    key: PrivateKey
    loaded_at: float
    window: tuple[dt.datetime, dt.datetime]


class CertificateStatus:
    """The proxies' one source of certificate-status decisions.

    Args:
        db: the server's database.
        config: the server's configuration.
        login: the token login state (signing stops when logged out).
        conf: returns the current verified global configuration.
        session: an aiohttp session for fetching peers' OCSP responses; a
            short-lived one per fetch when None.
        peer_ocsp_port: the port of peers' OCSP-for-peers service
            (``config.peer_ocsp_ports`` lists exceptions).
        reuse_seconds: how long checked own material is reused.
    """

    def __init__(
        self,
        db: Database,
        config: SecurityServerConfig,
        login: TokenLogin,
        conf: ConfProvider,
        *,
        session: aiohttp.ClientSession | None = None,
        peer_ocsp_port: int = 5577,
        reuse_seconds: float = 5.0,
    ) -> None:
        self._db = db
        self._config = config
        self._login = login
        self._conf = conf
        self._reuse_seconds = reuse_seconds
        self._reusable: dict[tuple[CertProfile, str | None], _Reusable] = {}
        # Decrypted keys by key id, with the login they were decrypted under:
        # an OCSP refresh does not drop them (decrypting costs ~0.1 s of
        # PBKDF2 on the event loop), a new login or a logout does.
        self._keys: dict[str, tuple[UnlockedToken, PrivateKey]] = {}
        self._loads: SingleFlight[_Reusable] = SingleFlight()
        self._signers: TrustCache[SignerStatus] = TrustCache()
        self._peers = PeerStatus(
            db,
            session=session,
            port=peer_ocsp_port,
            ports={p.address: p.port for p in config.peer_ocsp_ports},
            timeout=config.timeouts.connect_seconds,
        )

    def invalidate(self) -> None:
        """Forget reused material (after an OCSP refresh or a key change);
        decrypted keys stay for the login they were decrypted under."""
        self._reusable.clear()
        self._signers.clear()
        self._loads = SingleFlight()  # a load started before this is not joined

    def current_configuration(self, now: dt.datetime) -> LoadedConfiguration:
        """The global configuration, refused once expired at ``now``.

        Raises:
            GlobalConfExpired: code ``OutdatedGlobalConf``.
        """
        loaded = self._conf()
        if loaded.expire_date <= now:
            raise GlobalConfExpired(
                f"The global configuration expired at {loaded.expire_date.isoformat()}",
                detail={"expire_date": loaded.expire_date.isoformat()},
            )
        return loaded

    async def _own(
        self, usage: CertProfile, member: str | None, now: dt.datetime
    ) -> tuple[CheckedCertificate, PrivateKey]:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        try:
            unlocked = self._login.unlocked()
        except Unauthenticated:
            # Logged out: no decrypted key stays in memory.
            self._keys.clear()
            self._reusable.clear()
            raise
        conf = self.current_configuration(now).shared
        slot = (usage, member)
        reuse = self._reusable.get(slot)
        if (
            reuse is not None
            and time.monotonic() - reuse.loaded_at < self._reuse_seconds
            and reuse.window[0] <= now <= reuse.window[1]
        ):
            return reuse.checked, reuse.key

        async def load() -> _Reusable:
            # Concurrent callers share this one check (SingleFlight).
            started = time.monotonic()
            checked = await checked_own_certificate(
                self._db, conf, usage, member, now=now
            )
            held = self._keys.get(checked.key_id)
            if held is not None and held[0] is unlocked:
                key = held[1]
            else:
                key = await load_private_key(
                    self._db, self._config.token_dir, unlocked, checked.key_id
                )
                self._keys[checked.key_id] = (unlocked, key)
            window = valid_window(checked.path, checked.statuses, conf)
            fresh = _Reusable(checked, key, started, window)
            self._reusable[slot] = fresh
            return fresh

        loaded = await self._loads.run(slot, load)
        if not loaded.window[0] <= now <= loaded.window[1]:
            # A shared check made for another caller's "now": ours must be
            # inside its validity window too, or it is checked afresh.
            loaded = await load()
        return loaded.checked, loaded.key

    async def signing_material(
        self, member: ClientId, *, now: dt.datetime
    ) -> SigningMaterial:
        """The key, certificate, chain and OCSP responses to sign for ``member``.

        Args:
            member: the message's client (a subsystem signs with its member's key).
            now: the signing time.

        Returns:
            The checked material.

        Raises:
            Unauthenticated: code ``TokenNotActive`` (token logged out).
            GlobalConfExpired: the global configuration has expired.
            NotFound: code ``CertNotFound``: no active signing certificate.
            CertificateValidationError, CertificateExpired: see
                :func:`~security_server.own_material.checked_own_certificate`.
            OcspError, OcspStale, RevokedCertificate, OcspUnknownStatus: the
                cached OCSP response is missing, too old or not ``good``.
        """
        checked, key = await self._own(CertProfile.SIGN, str(member.member), now)
        return SigningMaterial(
            member=member.member,
            key=key,
            cert=checked.cert,
            chain=checked.path[1:],
            ocsp_ders=tuple(s.der for s in checked.statuses),
            ocsp=checked.statuses[0],
        )

    async def auth_material(self, *, now: dt.datetime) -> AuthMaterial:
        """This server's authentication key, certificate, chain and OCSP.

        Raises:
            Unauthenticated, GlobalConfExpired, NotFound,
            CertificateValidationError, OcspError, ...: as
                :meth:`signing_material`; also CertificateValidationError code
                ``CertNotRegistered`` when the global configuration does not
                list the certificate for this server.
        """
        checked, key = await self._own(CertProfile.AUTH, None, now)
        return AuthMaterial(
            server_id=checked.server_id,
            key=key,
            cert=checked.cert,
            chain=checked.path[1:],
            ocsp_der=checked.statuses[0].der,
            chain_ocsp_ders=tuple(s.der for s in checked.statuses[1:]),
            ocsp=checked.statuses[0],
        )

    async def verify_peer(
        self,
        cert_der: bytes,
        *,
        now: dt.datetime,
        expected_server: SecurityServerId | None = None,
        expected_client: ClientId | None = None,
        issuer_certs: Sequence[x509.Certificate] = (),
    ) -> PeerIdentity:
        """Decide whether a TLS peer is a registered server in good standing.

        OCSP responses come from the cache, else from the peer's OCSP-for-peers
        service (its address in the global configuration), else from the
        CA's responder; fetched responses are cached once they verify.

        Args:
            cert_der: the peer's TLS certificate.
            now: the validation time.
            expected_server: the server the client meant to reach.
            expected_client: the member or subsystem the peer must host.
            issuer_certs: CA certificates the peer sent (path building only).

        Returns:
            The verified identity (from
            :func:`jplink.security.tls.verify_peer_auth_certificate`).

        Raises:
            GlobalConfExpired: the global configuration has expired.
            CertificateValidationError: code ``SslAuthenticationFailed`` for
                every failed check, ``detail["reason"]`` naming it.
        """
        conf = self.current_configuration(now).shared
        return await self._peers.verify(
            cert_der,
            conf,
            now=now,
            expected=(expected_server, expected_client),
            issuer_certs=issuer_certs,
        )

    async def check_signer(
        self,
        cert: x509.Certificate,
        ocsp_ders: Sequence[bytes],
        member: ClientId,
        *,
        now: dt.datetime,
    ) -> SignerStatus:
        """Check a message signer's certificate (PROTOCOLS.md §6.4, §8).

        Passes only when the certificate is a signing certificate that chains
        to an approved CA (not ``authenticationOnly``) at ``now``; a ``good``
        OCSP response among ``ocsp_ders``, no older than
        ``ocspFreshnessSeconds``, verifies for it and for each intermediate
        CA; and its subject names ``member`` under the certificate profile.

        Args:
            cert: the certificate from the signature's KeyInfo.
            ocsp_ders: the OCSP responses embedded in the signature.
            member: the message's ``client`` (a subsystem's member signs).
            now: the validation time.

        Returns:
            The verified status (remembered for the same certificate,
            responses and member while every response stays fresh).

        Raises:
            GlobalConfExpired: the global configuration has expired.
            CertificateValidationError: code ``MalformedSignature`` without
                nonRepudiation; ``IncorrectCertificate`` for an
                authentication-only CA or a subject naming another member;
                ``CertValidation`` for no path to an approved CA.
            CertificateExpired: a path certificate is not valid at ``now``.
            RevokedCertificate: an authentic response says revoked.
            OcspError, OcspStale, OcspUnknownStatus, InvalidSignature: no
                usable ``good`` response.
        """
        loaded = self.current_configuration(now)
        key = (certificate_der(cert), tuple(ocsp_ders), member.member)
        known = self._signers.get(key, generation=loaded, now=now)
        if known is not None:
            return known
        status = verify_signer(cert, ocsp_ders, member, loaded.shared, now)
        # Remembered only when every embedded response is one that verified
        # as good: an unused candidate (say, a revoked answer not yet valid)
        # could change the verdict later, so such a list is always re-checked.
        if {s.der for s in status.statuses} == set(ocsp_ders):
            window = valid_window(status.path, status.statuses, loaded.shared)
            self._signers.put(key, status, generation=loaded, window=window)
        return status
