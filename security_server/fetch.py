"""Fetching service descriptions over HTTP(S) (the security server's WSDL client).

A small transport in the house pattern: aiohttp errors are translated by
:func:`jplink.clients.http.map_transport_errors`, the body is size-limited, and
what the bytes mean is decided by the pure parser (:func:`wsdl.parse_wsdl`).
"""

from __future__ import annotations

import aiohttp

from jplink.clients.http import map_transport_errors
from jplink.errors import InvalidRequest, TransportError
from wsdl.parse import MAX_WSDL_BYTES

__all__ = ["fetch_description"]


async def fetch_description(
    url: str,
    *,
    timeout: float = 30.0,
    session: aiohttp.ClientSession | None = None,
) -> bytes:
    """Download a WSDL (or OpenAPI) document.

    Args:
        url: an ``http://`` or ``https://`` address.
        timeout: total seconds allowed.
        session: the caller's session; a short-lived one is made when None.

    Returns:
        The body (at most :data:`wsdl.parse.MAX_WSDL_BYTES`).

    Raises:
        InvalidRequest: code ``InvalidUrl`` for another scheme.
        TransportError: the call failed, timed out, answered with a status
            other than 200, or sent an oversized body.
    """
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest(
            f"{url!r}: a service description URL must be http or https",
            code="InvalidUrl",
        )
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await fetch_description(url, timeout=timeout, session=own)
    with map_transport_errors(url):
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            body = await resp.content.read(MAX_WSDL_BYTES + 1)
            status = resp.status
    if status != 200:
        raise TransportError(
            f"{url} answered with HTTP {status}", url=url, status=status
        )
    if len(body) > MAX_WSDL_BYTES:
        raise TransportError(f"{url} sent more than {MAX_WSDL_BYTES} bytes", url=url)
    return body
