"""What the message exchange needs from the rest of the security server.

The exchange cores (:mod:`.client_proxy`, :mod:`.server_proxy`) and the
:mod:`.signer` depend on these small ports, not on concrete classes, so that
the certificate-status service (:mod:`.certstatus`) and the global
configuration can be replaced by in-memory fakes in tests:

- :class:`CertStatusPort`: our signing and authentication material (fail
  closed on a missing certificate or a stale OCSP response), and the trust
  decisions about peers and signers;
- :class:`ConfProvider`: the current, unexpired global configuration.

:class:`SavedConfProvider` is the production conf provider: it reads the
configuration saved by the configuration client and re-reads it when the
saved copy changes.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from cryptography import x509

from jplink.clients._confstore import read_saved
from jplink.clients.globalconf import LoadedConfiguration
from jplink.errors import GlobalConfExpired
from jplink.globalconf.model import SharedParameters
from jplink.identifiers import ClientId, SecurityServerId
from jplink.security.keys import PrivateKey
from jplink.security.tls import PeerIdentity

__all__ = [
    "AuthMaterialLike",
    "CertStatusPort",
    "ConfProvider",
    "SavedConfProvider",
    "SigningMaterialLike",
    "SigningMaterialSource",
]


class SigningMaterialLike(Protocol):
    """A member's signing key, certificate, chain and fresh OCSP responses."""

    @property
    def key(self) -> PrivateKey: ...
    @property
    def cert(self) -> x509.Certificate: ...
    @property
    def chain(self) -> Sequence[x509.Certificate]: ...
    @property
    def ocsp_ders(self) -> Sequence[bytes]: ...


class AuthMaterialLike(Protocol):
    """This server's TLS key, certificate, chain and fresh OCSP response."""

    @property
    def key(self) -> PrivateKey: ...
    @property
    def cert(self) -> x509.Certificate: ...
    @property
    def chain(self) -> Sequence[x509.Certificate]: ...
    @property
    def ocsp_der(self) -> bytes: ...


class SigningMaterialSource(Protocol):
    """Where the signer gets a member's signing material."""

    async def signing_material(
        self, member: ClientId, *, now: dt.datetime
    ) -> SigningMaterialLike:
        """Raises a JPLinkError when there is no usable, fresh sign certificate."""
        ...


class CertStatusPort(Protocol):
    """The certificate-status service (``security_server.certstatus``)."""

    async def signing_material(
        self, member: ClientId, *, now: dt.datetime
    ) -> SigningMaterialLike:
        """Raises a JPLinkError when there is no usable, fresh sign certificate."""
        ...

    async def auth_material(self, *, now: dt.datetime) -> AuthMaterialLike:
        """Raises a JPLinkError when there is no usable, fresh auth certificate."""
        ...

    async def verify_peer(
        self,
        cert_der: bytes,
        *,
        now: dt.datetime,
        expected_server: SecurityServerId | None = None,
        expected_client: ClientId | None = None,
    ) -> PeerIdentity:
        """Raises ``SslAuthenticationFailed`` unless the peer is trusted."""
        ...

    async def check_signer(
        self,
        cert: x509.Certificate,
        ocsp_ders: Sequence[bytes],
        member: ClientId,
        *,
        now: dt.datetime,
    ) -> object:
        """Raises unless ``cert`` is a valid, fresh sign certificate of ``member``.

        Returns the verified status (a frozen result; the proxies need only
        that no exception was raised).
        """
        ...


class ConfProvider(Protocol):
    """The global configuration in force."""

    def current(self, *, now: dt.datetime) -> SharedParameters:
        """The shared parameters.

        Raises:
            GlobalConfExpired: (``OutdatedGlobalConf``) the configuration expired.
            GlobalConfError: there is no usable configuration.
        """
        ...


class SavedConfProvider:
    """The configuration saved in ``directory``, re-read when it changes.

    The configuration client replaces ``<instance>/current.json`` atomically
    after each verified download; its modification time tells when to
    re-read. The expiry is checked on every call, so an outdated copy stops
    every exchange ("refuse everything when the global configuration has
    expired", PROTOCOLS.md §7.1 step 2).

    Args:
        directory: the global-configuration directory.
        instance: this server's instance identifier.
        check_seconds: look at the file's modification time at most this
            often (0: on every call); a newly saved copy is taken up at most
            this much later.
    """

    def __init__(
        self, directory: Path, instance: str, *, check_seconds: float = 0.0
    ) -> None:
        if check_seconds < 0:
            raise ValueError("check_seconds must not be negative")
        self._directory = directory
        self._instance = instance
        self._check_seconds = check_seconds
        self._checked_at = -math.inf
        self._loaded: LoadedConfiguration | None = None
        self._stamp: int | None = None

    def _changed(self) -> int | None:
        try:
            return (
                (self._directory / self._instance / "current.json").stat().st_mtime_ns
            )
        except OSError:
            return None

    def loaded(self) -> LoadedConfiguration:
        """The saved configuration as last read, expired or not.

        The certificate-status service takes this and checks the expiry
        itself.

        Raises:
            GlobalConfError: nothing saved, or the saved copy is damaged.
        """
        clock = time.monotonic()
        if self._loaded is not None and clock - self._checked_at < self._check_seconds:
            return self._loaded
        self._checked_at = clock
        stamp = self._changed()
        if self._loaded is None or stamp != self._stamp:
            self._loaded, self._stamp = None, stamp
            self._loaded = read_saved(self._directory, self._instance)
        return self._loaded

    def current(self, *, now: dt.datetime) -> SharedParameters:
        """The shared parameters in force at ``now``.

        Raises:
            GlobalConfExpired: (``OutdatedGlobalConf``) the saved copy expired.
            GlobalConfError: nothing saved, or the saved copy is damaged.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        loaded = self.loaded()
        if loaded.expire_date <= now:
            raise GlobalConfExpired(
                f"The global configuration expired at {loaded.expire_date.isoformat()}",
                detail={"expire_date": loaded.expire_date.isoformat()},
            )
        return loaded.shared
