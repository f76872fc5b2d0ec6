"""A peer security server's authentication certificate, with OCSP (PROTOCOLS.md §5.1).

"Get OCSP responses for every chain cert except the trusted root. Use the
local cache, or download them from the provider SS on port 5577." The trust
decision itself is :func:`jplink.security.tls.verify_peer_auth_certificate`;
this module finds the responses it needs:

1. the cache (table ``ocsp_response``), with no network I/O;
2. when a response is missing or too old: the peer's OCSP-for-peers service
   at its global-configuration address, then the CA's responders;
3. responses that verified are cached for the next connection.

A revoked certificate or a failure unrelated to OCSP (unregistered, wrong
server, no path to an approved CA) is refused at once, without a download.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Mapping, Sequence

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from jplink.errors import (
    CertificateValidationError,
    JPLinkError,
    OcspError,
    StorageError,
)
from jplink.globalconf import SharedParameters
from jplink.identifiers import ClientId, SecurityServerId
from jplink.security.ocsp import build_ocsp_request
from jplink.security.tls import (
    SSL_AUTHENTICATION_FAILED,
    PeerIdentity,
    verify_peer_auth_certificate,
)
from jplink.storage import Database

from .ocsp_cache import cached_responses, cert_sha256, single_for, store_response
from .ocsp_checks import path_of
from .peer_ocsp_client import fetch_from_peer, fetch_from_responder

__all__ = ["PeerStatus"]

_log = logging.getLogger(__name__)

_Expected = tuple[SecurityServerId | None, ClientId | None]


def _fail(message: str, reason: str) -> CertificateValidationError:
    return CertificateValidationError(
        f"Peer authentication failed: {message}",
        code=SSL_AUTHENTICATION_FAILED,
        detail={"reason": reason},
    )


def _wants_download(exc: CertificateValidationError) -> bool:
    # Only a missing or unusable OCSP response is worth a download; a revoked
    # certificate (RevokedCertificate is not an OcspError) is final.
    return exc.detail.get("reason") == "MissingOcsp" or isinstance(
        exc.__cause__, OcspError
    )


class PeerStatus:
    """Verifies peers' TLS certificates and keeps their OCSP responses cached.

    Args:
        db: the server's database (the cache).
        session: the aiohttp session for downloads; a short-lived one when None.
        port: the peers' OCSP-for-peers port.
        timeout: seconds allowed per download.
        ports: per-address exceptions to ``port`` (test networks, where the
            address carries the server-proxy port: ``127.0.0.1:25500``).
    """

    def __init__(
        self,
        db: Database,
        *,
        session: aiohttp.ClientSession | None,
        port: int,
        timeout: float,
        ports: Mapping[str, int] | None = None,
    ) -> None:
        self._db = db
        self._session = session
        self._port = port
        self._ports = dict(ports or {})
        self._timeout = timeout

    def ocsp_endpoint(self, address: str) -> tuple[str, int]:
        """The host and OCSP-for-peers port of a peer's configured address.

        An address ``host:port`` names the server-proxy port (test networks);
        its OCSP-for-peers port then comes from ``ports`` (else ``port``).
        """
        port = self._ports.get(address, self._port)
        host, sep, tail = address.rpartition(":")
        if sep and tail.isdigit() and "]" not in tail and ":" not in host:
            return host, port
        return address, port

    async def verify(
        self,
        cert_der: bytes,
        conf: SharedParameters,
        *,
        now: dt.datetime,
        expected: _Expected,
        issuer_certs: Sequence[x509.Certificate] = (),
    ) -> PeerIdentity:
        """Verify a peer certificate; see :meth:`CertificateStatus.verify_peer`.

        Raises:
            CertificateValidationError: code ``SslAuthenticationFailed``.
        """
        try:
            cert = x509.load_der_x509_certificate(cert_der)
        except ValueError:
            raise _fail(
                "the certificate is not valid DER", "MalformedCertificate"
            ) from None
        try:
            path = path_of(cert, conf, now, issuer_certs)
        except JPLinkError:
            path = (cert,)  # the check below reports the reason
        async with self._db.transaction() as session:
            rows = await cached_responses(session, [cert_sha256(c) for c in path])
        cached = [rows[d].response_der for d in map(cert_sha256, path) if d in rows]
        try:
            return self._check(cert_der, conf, cached, now, expected, issuer_certs)
        except CertificateValidationError as exc:
            if len(path) < 2 or not _wants_download(exc):
                raise
        fetched = await self._download(conf, path)
        identity = self._check(cert_der, conf, fetched, now, expected, issuer_certs)
        await self._remember(path, fetched, now)
        return identity

    async def _remember(
        self,
        path: Sequence[x509.Certificate],
        fetched: Sequence[bytes],
        now: dt.datetime,
    ) -> None:
        # Only a cache: the peer verified with ``fetched`` already. Another
        # request (or proxy worker process) that fetched the same responses
        # may insert the row first; the second attempt then sees that row
        # and keeps the newer response. A cache that cannot be written is
        # logged: the next check downloads again.
        for attempt in (1, 2):
            try:
                async with self._db.transaction() as session:
                    for link in path[:-1]:  # every one of them verified just now
                        der = next((d for d in fetched if single_for(d, link)), None)
                        if der is not None:
                            await store_response(session, link, der, now=now)
                return
            except StorageError as exc:
                if attempt == 2:
                    _log.warning("cannot cache a peer's OCSP responses: %s", exc)

    @staticmethod
    def _check(
        cert_der: bytes,
        conf: SharedParameters,
        responses: Sequence[bytes],
        now: dt.datetime,
        expected: _Expected,
        issuer_certs: Sequence[x509.Certificate],
    ) -> PeerIdentity:
        return verify_peer_auth_certificate(
            cert_der,
            conf=conf,
            ocsp_der=_leaf_response(cert_der, responses),
            now=now,
            issuer_certs=issuer_certs,
            expected_server=expected[0],
            expected_client=expected[1],
            chain_ocsp=responses,
        )

    async def _download(
        self, conf: SharedParameters, path: Sequence[x509.Certificate]
    ) -> tuple[bytes, ...]:
        if self._session is None:
            async with aiohttp.ClientSession() as own:
                return await self._download_with(own, conf, path)
        return await self._download_with(self._session, conf, path)

    async def _download_with(
        self,
        session: aiohttp.ClientSession,
        conf: SharedParameters,
        path: Sequence[x509.Certificate],
    ) -> tuple[bytes, ...]:
        wanted = path[:-1]  # "every chain cert except the trusted root"
        errors: list[str] = []
        address = conf.server_for_auth_cert(path[0]).address
        if address:
            host, port = self.ocsp_endpoint(address)
            try:
                return await fetch_from_peer(
                    session, host, wanted, port=port, timeout=self._timeout
                )
            except JPLinkError as exc:
                errors.append(f"{address}: {exc.code}: {exc.message}")
        found: list[bytes] = []
        for link, issuer in itertools.pairwise(path):
            der = await self._from_ca(session, conf, link, issuer, errors)
            if der is None:
                raise _fail(
                    "no OCSP response could be fetched for "
                    f"{link.subject.rfc4514_string()}: " + "; ".join(errors),
                    "MissingOcsp",
                )
            found.append(der)
        return tuple(found)

    async def _from_ca(
        self,
        session: aiohttp.ClientSession,
        conf: SharedParameters,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        errors: list[str],
    ) -> bytes | None:
        try:
            responders = conf.ocsp_responders(issuer)
        except JPLinkError as exc:
            errors.append(exc.message)
            return None
        request = build_ocsp_request(cert, issuer, hash_algorithm=hashes.SHA256())
        for responder in responders:
            try:
                return await fetch_from_responder(
                    session, responder.url, request, timeout=self._timeout
                )
            except JPLinkError as exc:
                errors.append(f"{responder.url}: {exc.code}: {exc.message}")
        return None


def _leaf_response(cert_der: bytes, responses: Sequence[bytes]) -> bytes | None:
    # The list may hold responses for the whole chain; the leaf's is the one
    # naming the leaf's serial (verified afterwards, CertID included).
    cert = x509.load_der_x509_certificate(cert_der)
    for der in responses:
        try:
            if single_for(der, cert) is not None:
                return der
        except JPLinkError:
            continue
    return None
