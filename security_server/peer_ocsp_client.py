"""Fetching OCSP responses: from a CA's responder and from a peer's port 5577.

The transport half of the house pattern (STYLE.md rule 2): the requests are
built and the answers split by the sans-IO :mod:`jplink.security.ocsp` and
:mod:`jplink.protocol.ocsp_peers`; aiohttp errors are translated once by
:func:`jplink.clients.http.map_transport_errors`. Nothing returned here is
trusted yet: every response must still pass
:func:`jplink.security.ocsp.verify_ocsp_response` for its certificate.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
from cryptography import x509

from jplink.clients.http import map_transport_errors, read_body
from jplink.errors import TransportError
from jplink.protocol.ocsp_peers import (
    DEFAULT_MAX_RESPONSE_BYTES,
    OCSP_PEERS_PORT,
    build_ocsp_peer_request,
    parse_ocsp_peer_response,
)
from jplink.security.ocsp import parse_ocsp_response

__all__ = [
    "MAX_OCSP_RESPONSE_BYTES",
    "fetch_from_peer",
    "fetch_from_responder",
    "peer_url",
]

#: A single OCSP response with a responder certificate is a few KiB.
MAX_OCSP_RESPONSE_BYTES = 64 * 1024
_REQUEST_TYPE = "application/ocsp-request"
_RESPONSE_TYPE = "application/ocsp-response"


async def fetch_from_responder(
    session: aiohttp.ClientSession,
    url: str,
    request_der: bytes,
    *,
    timeout: float,
) -> bytes:
    """POST an OCSP request to a CA's responder (PROTOCOLS.md §8).

    Args:
        session: the caller's session.
        url: the responder URL from the global configuration.
        request_der: from :func:`jplink.security.ocsp.build_ocsp_request`.
        timeout: total seconds allowed.

    Returns:
        The DER response (decoded once, not verified).

    Raises:
        TransportError: the call failed, timed out, answered other than 200
            or sent too much.
        OcspError: the body is not an OCSP response.
    """
    with map_transport_errors(url):
        async with session.post(
            url,
            data=request_der,
            headers={"Content-Type": _REQUEST_TYPE, "Accept": _RESPONSE_TYPE},
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as resp:
            body = await read_body(resp, limit=MAX_OCSP_RESPONSE_BYTES, url=url)
            status = resp.status
    if status != 200:
        raise TransportError(
            f"{url} answered with HTTP {status}", url=url, status=status
        )
    parse_ocsp_response(body)
    return body


def peer_url(address: str, port: int = OCSP_PEERS_PORT) -> str:
    """The OCSP-for-peers base URL of a security server address."""
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    return f"http://{host}:{port}"


async def fetch_from_peer(
    session: aiohttp.ClientSession,
    address: str,
    certs: Sequence[x509.Certificate],
    *,
    port: int = OCSP_PEERS_PORT,
    timeout: float,
) -> tuple[bytes, ...]:
    """Ask a peer security server for its OCSP responses (PR-MESSTRANSP §5.2).

    Args:
        session: the caller's session.
        address: the peer's address from the global configuration.
        certs: the peer's certificate chain without the trusted root.
        port: the OCSP-for-peers port (5577).
        timeout: total seconds allowed.

    Returns:
        One DER response per certificate, in order (not verified).

    Raises:
        TransportError: the call failed, timed out or answered other than 200
            (a peer answers 500 when it lacks a response).
        MalformedMessage: not the multipart answer for ``len(certs)``
            certificates.
        OcspError: a part is not an OCSP response.
    """
    url = peer_url(address, port) + build_ocsp_peer_request(certs)
    with map_transport_errors(url):
        async with session.get(
            url,
            headers={"Accept": "multipart/related"},
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as resp:
            body = await read_body(resp, limit=DEFAULT_MAX_RESPONSE_BYTES, url=url)
            status = resp.status
            content_type = resp.headers.get("Content-Type", "")
    if status != 200:
        raise TransportError(
            f"{url} answered with HTTP {status}", url=url, status=status
        )
    return parse_ocsp_peer_response(body, content_type, expected=len(certs))
