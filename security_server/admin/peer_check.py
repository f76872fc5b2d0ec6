"""A connection test to a peer security server's server proxy (port 5500).

A diagnostic, not a trust decision: it tells an operator whether a peer's
address answers TCP, completes a TLS handshake, and which certificate it
shows, and whether the global configuration lists that certificate's hash as
some security server's authentication certificate. The exchange itself
verifies peers with :mod:`security_server.certstatus` (fail closed); here
the handshake does not verify the peer, so that a misconfigured peer can be
described instead of just refused. Failures are reported in the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import time
from dataclasses import dataclass

from cryptography import x509

from jplink.errors import InvalidRequest, JPLinkError
from jplink.globalconf import SharedParameters

__all__ = ["PeerCheck", "check_peer", "parse_address"]

#: The server proxy's port (PROTOCOLS.md §5.1: peers connect to 5500).
DEFAULT_PORT = 5500


@dataclass(frozen=True, slots=True)
class PeerCheck:
    """The outcome of one connection test.

    Attributes:
        address: the address tested, as given.
        tcp_ok: a TCP connection was made.
        tls_ok: the TLS handshake completed.
        duration_seconds: how long the test took.
        cert_sha256: hex SHA-256 of the certificate the peer showed.
        registered_server: the server the global configuration lists for that
            certificate, or None (unregistered, or no configuration).
        error: why the test failed, or None.
    """

    address: str
    tcp_ok: bool
    tls_ok: bool
    duration_seconds: float
    cert_sha256: str | None = None
    registered_server: str | None = None
    error: str | None = None


def parse_address(address: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` -> (host, port).

    Raises:
        InvalidRequest: code ``InvalidAddress`` for anything else.
    """
    text = address.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            host = ""
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    if (
        not host
        or any(c.isspace() or c in "/?#@" for c in host)
        or (port_text and not port_text.isdecimal())
        or (port_text and not 0 < int(port_text) < 65536)
    ):
        raise InvalidRequest(f"{address!r} is not host[:port]", code="InvalidAddress")
    return host, int(port_text) if port_text else DEFAULT_PORT


def _client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Diagnostic only: describe the peer's certificate instead of refusing it.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def check_peer(
    address: str,
    *,
    shared: SharedParameters | None,
    timeout: float = 10.0,
) -> PeerCheck:
    """Connect to a peer's server proxy and describe what answered.

    Args:
        address: ``host[:port]`` (port 5500 by default).
        shared: the global configuration in force, to name the server that
            registered the peer's certificate; None when there is none.
        timeout: seconds allowed for connecting and the handshake.

    Returns:
        The outcome (a failure is described, not raised).

    Raises:
        InvalidRequest: code ``InvalidAddress``.
    """
    host, port = parse_address(address)
    started = time.monotonic()

    def done(**facts: object) -> PeerCheck:
        return PeerCheck(
            address=address,
            duration_seconds=round(time.monotonic() - started, 3),
            **facts,  # type: ignore[arg-type]
        )

    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        return done(tcp_ok=False, tls_ok=False, error=f"TCP connect failed: {exc!r}")
    try:
        try:
            await asyncio.wait_for(
                writer.start_tls(_client_context(), server_hostname=host), timeout
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            return done(tcp_ok=True, tls_ok=False, error=f"TLS failed: {exc!r}")
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        if not der:
            return done(tcp_ok=True, tls_ok=True, error="The peer sent no certificate")
        registered = None
        if shared is not None:
            with contextlib.suppress(JPLinkError, ValueError):
                cert = x509.load_der_x509_certificate(der)
                registered = str(shared.server_for_auth_cert(cert).id)
        return done(
            tcp_ok=True,
            tls_ok=True,
            cert_sha256=hashlib.sha256(der).hexdigest(),
            registered_server=registered,
            error=None
            if registered
            else "The certificate is not a registered authentication certificate",
        )
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
