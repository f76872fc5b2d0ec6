"""Outbound mutual TLS to peer security servers (port 5500), kept alive.

PROTOCOLS.md §5.1: the consumer opens TLS to the provider's server with its
authentication certificate, verifies the provider's certificate (chain,
OCSP, registration of its hash for a server hosting the provider) and, "with
several candidates, connects to all of them in parallel and uses the first
that succeeds".

- Connections are pooled and kept alive (:class:`jplink.clients.http11.Http11Pool`,
  one pool per TLS identity). Each NEW connection is verified with the
  certificate-status service right after the TLS handshake and before any
  byte of a request is written (the pool's ``on_connect`` hook); a
  connection that fails is closed and the error (``SslAuthenticationFailed``)
  propagates. A verified connection is reused
  until it is closed, as X-Road reuses its verified TLS sessions.
- A peer certificate that verified is remembered (the exact DER bytes and
  the server it had to be) for ``peer_cache_seconds``, as the server proxy
  remembers its peers: when many connections open at once (a burst of
  concurrent requests grows the pool) the certificate-status check, with
  its database look-up of cached OCSP responses, runs once, not once per
  connection. A revoked or deregistered peer is therefore refused on new
  connections at the latest ``peer_cache_seconds`` after the check that
  passed (the same bound as on the provider side); refusals are never
  remembered; at most :data:`MAX_VERIFIED_PEERS` entries are kept.
- Choosing among several servers: the candidates are probed in parallel
  (TCP + TLS handshake + peer verification) and tried in the order they
  answered; the order is remembered for ``rank_seconds``. A candidate whose
  connection fails is skipped (fail-over); a request is never sent twice
  once a connection carried it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from jplink.clients.http11 import Http11Pool
from jplink.errors import JPLinkError, LocalProtocolError, NotFound, TransportError
from jplink.globalconf.model import SecurityServer
from jplink.identifiers import SecurityServerId
from jplink.protocol.transport import DEFAULT_MAX_TRANSPORT_BYTES
from jplink.security.keys import PrivateKey
from jplink.security.tls import client_ssl_context, peer_certificate_der

from .exchange_ports import CertStatusPort

__all__ = [
    "DEFAULT_PEER_PORT",
    "MAX_VERIFIED_PEERS",
    "PeerResponse",
    "PeerTransport",
    "peer_address",
]

#: The server proxy port of X-Road security servers.
DEFAULT_PEER_PORT = 5500

#: Verified peer certificates remembered at most (emptied when full).
MAX_VERIFIED_PEERS = 256


@dataclass(frozen=True, slots=True)
class PeerResponse:
    """A peer's HTTP answer, read in full."""

    server: SecurityServerId
    status: int
    content_type: str
    body: bytes
    #: The response headers (case-insensitive look-up).
    headers: Mapping[str, str]


def peer_address(server: SecurityServer) -> tuple[str, int]:
    """Host and port of a server's proxy (``host`` or ``host:port``).

    Raises:
        NotFound: code ``UnknownMember``: the server has no address.
    """
    if not server.address:
        raise NotFound(f"{server.id} has no address", code="UnknownMember")
    host, sep, port = server.address.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return host.strip("[]"), int(port)
    return server.address, DEFAULT_PEER_PORT


def _url(server: SecurityServer) -> str:
    host, port = peer_address(server)
    return f"https://[{host}]:{port}/" if ":" in host else f"https://{host}:{port}/"


class PeerTransport:
    """Sends transport messages to peer security servers.

    Args:
        certstatus: verifies peers and supplies our authentication material.
        ssl_context: builds the client TLS context from our auth
            certificate chain, key and the approved CA certificates
            (:func:`jplink.security.tls.client_ssl_context`).
        clock: the current time (aware).
        connect_timeout, read_timeout: seconds.
        rank_seconds: how long the measured order of candidates is kept.
        peer_cache_seconds: how long a verified peer certificate is accepted
            for new connections without checking it again; 0 checks every
            connection.
    """

    def __init__(
        self,
        certstatus: CertStatusPort,
        *,
        ssl_context: Callable[..., ssl.SSLContext] = client_ssl_context,
        clock: Callable[[], dt.datetime],
        connect_timeout: float = 30.0,
        read_timeout: float = 60.0,
        rank_seconds: float = 60.0,
        peer_cache_seconds: float = 60.0,
    ) -> None:
        if peer_cache_seconds < 0:
            raise ValueError("peer_cache_seconds must not be negative")
        self._certstatus = certstatus
        self._make_context = ssl_context
        self._identity: tuple[bytes, tuple[bytes, ...]] | None = None
        self._objects: tuple[x509.Certificate, ...] = ()
        self._clock = clock
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._rank_seconds = rank_seconds
        self._peer_ttl = peer_cache_seconds
        self._verified: dict[tuple[bytes, SecurityServerId | None], float] = {}
        self._ranking: dict[frozenset[SecurityServerId], tuple[float, list[int]]] = {}
        self._pool: Http11Pool | None = None
        self._pool_ctx: ssl.SSLContext | None = None
        self._ctx: ssl.SSLContext | None = None

    async def verify_peer_certificate(
        self, cert_der: bytes, server: SecurityServerId | None
    ) -> None:
        """Verify the certificate a peer presented for ``server``.

        Raises:
            CertificateValidationError: code ``SslAuthenticationFailed``.
        """
        key = (cert_der, server)  # the exact bytes
        checked_at = self._verified.get(key)
        if checked_at is not None and time.monotonic() - checked_at < self._peer_ttl:
            return
        await self._certstatus.verify_peer(
            cert_der, now=self._clock(), expected_server=server
        )
        if self._peer_ttl > 0:
            if len(self._verified) >= MAX_VERIFIED_PEERS:
                self._verified.clear()
            self._verified[key] = time.monotonic()

    def use_identity(
        self,
        chain: Sequence[x509.Certificate],
        key: PrivateKey,
        ca_certs: Sequence[x509.Certificate],
    ) -> None:
        """Use this auth certificate chain and trust these CAs from now on.

        A new TLS context (and connection pool) is made only when the
        certificate or the CA set changed.
        """
        objects = (chain[0], *ca_certs)
        last = self._objects
        if len(last) == len(objects) and all(
            a is b for a, b in zip(last, objects, strict=True)
        ):
            return  # the very same certificate objects: nothing changed
        self._objects = objects
        ident = (
            chain[0].fingerprint(hashes.SHA256()),
            tuple(c.fingerprint(hashes.SHA256()) for c in ca_certs),
        )
        if ident != self._identity:
            self._ctx = self._make_context(chain, key, server_ca_certs=ca_certs)
            self._identity = ident

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ctx is None:
            raise LocalProtocolError("No TLS identity", code="SslAuthenticationFailed")
        return self._ctx

    def _pool_for(self, ctx: ssl.SSLContext) -> Http11Pool:
        if self._pool is None or ctx is not self._pool_ctx:
            if self._pool is not None:
                self._pool.close()  # connections of the old TLS identity
            self._pool = Http11Pool()
            self._pool_ctx = ctx
        return self._pool

    async def _probe(self, server: SecurityServer) -> None:
        # The probe's verified connection is kept in the pool: the request
        # that follows uses it, and the other candidates' for a fail-over.
        ctx = self._ssl_context()
        await self._pool_for(ctx).prepare(
            _url(server),
            connect_timeout=self._connect_timeout,
            tls=ctx,
            on_connect=functools.partial(self._check_new, server.id),
        )

    async def _order(self, servers: Sequence[SecurityServer]) -> list[SecurityServer]:
        if len(servers) == 1:
            return list(servers)
        key = frozenset(s.id for s in servers)
        cached = self._ranking.get(key)
        if cached is not None and time.monotonic() - cached[0] < self._rank_seconds:
            return [servers[i] for i in cached[1]]

        # "connects to all of them in parallel and uses the first that
        # succeeds" (PROTOCOLS.md §5.1); the rest keep their listed order.
        async def probe(index: int) -> int | None:
            try:
                await self._probe(servers[index])
            except JPLinkError:
                return None
            return index

        pending = {asyncio.create_task(probe(i)) for i in range(len(servers))}
        first: int | None = None
        try:
            while pending and first is None:
                done, pending = await asyncio.wait(
                    pending, return_when=asyncio.FIRST_COMPLETED
                )
                winners = [t.result() for t in done if t.result() is not None]
                first = min(winners) if winners else None  # type: ignore[type-var]
        finally:
            for task in pending:
                task.cancel()
        ranking = list(range(len(servers)))
        if first is not None:
            ranking.remove(first)
            ranking.insert(0, first)
        self._ranking[key] = (time.monotonic(), ranking)
        return [servers[i] for i in ranking]

    async def send(
        self,
        servers: Sequence[SecurityServer],
        *,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float | None = None,
    ) -> PeerResponse:
        """POST a transport message to the first of ``servers`` that connects.

        Args:
            servers: the candidate servers of the provider (at least one).
            body: the transport message.
            headers: the HTTP headers (Content-Type, x-road-* ...).
            timeout: seconds to wait for the answer; the default read timeout
                otherwise.

        Returns:
            The peer's answer.

        Raises:
            CertificateValidationError: (``SslAuthenticationFailed``) the last
                candidate's certificate did not verify.
            TransportError: (``NetworkError``) no candidate could be reached,
                or the chosen one failed after the request was sent.
        """
        if not servers:
            raise NotFound(
                "No security server offers the service", code="UnknownMember"
            )
        last: JPLinkError | None = None
        for server in await self._order(servers):
            ctx = self._ssl_context()
            try:
                resp = await self._pool_for(ctx).post(
                    _url(server),
                    body,
                    headers,
                    timeout=timeout or self._read_timeout,
                    connect_timeout=self._connect_timeout,
                    limit=DEFAULT_MAX_TRANSPORT_BYTES,
                    tls=ctx,
                    on_connect=functools.partial(self._check_new, server.id),
                )
            except TransportError as exc:
                # Fail over only when no connection was made: a request that
                # reached a server is never sent again.
                if exc.request_sent:
                    raise
                last = exc
                self._ranking.clear()
                continue
            return PeerResponse(
                server.id,
                resp.status,
                resp.headers.get("Content-Type", ""),
                resp.body,
                resp.headers,  # read-only, case-insensitive
            )
        assert last is not None
        raise last

    async def _check_new(
        self, server: SecurityServerId, transport: asyncio.Transport
    ) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            raise LocalProtocolError(
                "The peer connection is not TLS", code="SslAuthenticationFailed"
            )
        await self.verify_peer_certificate(peer_certificate_der(ssl_object), server)

    async def close(self) -> None:
        """Close the pooled connections."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
