"""Client of a CA's OCSP responder (RFC 6960 Appendix A.1, HTTP POST).

PROTOCOLS.md §8: X-Road fetches with "HTTP **POST** to the responder URL from
``approvedCA/*/ocsp/url``, with ``Content-Type: application/ocsp-request`` and
``Accept: application/ocsp-response``". Split as STYLE.md §4 rule 2 asks:
the request comes from :func:`jplink.security.ocsp.build_ocsp_request`, the
answer is checked by :func:`jplink.security.ocsp.verify_ocsp_response` (the
trust decision, made by the caller with its own trust material), and this
module only moves bytes: :class:`AiohttpOcspClient` over HTTP and
:class:`FakeOcspClient` in process, for tests.

The transport refuses what is not an OCSP response at the HTTP level (a
status other than 200, another content type, an oversized body), so the
caller never parses an error page as DER.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import aiohttp

from ..errors import TransportError
from .http import post_der

__all__ = [
    "OCSP_REQUEST_TYPE",
    "OCSP_RESPONSE_TYPE",
    "AiohttpOcspClient",
    "FakeOcspClient",
    "OcspClient",
]

#: RFC 6960 Appendix A.1: the request media type.
OCSP_REQUEST_TYPE = "application/ocsp-request"
#: RFC 6960 Appendix A.1: the response media type.
OCSP_RESPONSE_TYPE = "application/ocsp-response"
#: An OCSP response for one certificate is a few KiB.
MAX_OCSP_RESPONSE_BYTES = 64 * 1024
#: Seconds allowed for one OCSP call unless the caller says otherwise.
DEFAULT_OCSP_TIMEOUT = 10.0


class OcspClient(Protocol):
    """Sends a DER ``OCSPRequest`` and returns the DER ``OCSPResponse`` bytes."""

    async def fetch(self, url: str, request_der: bytes) -> bytes:
        """POST ``request_der`` to the responder at ``url``.

        Raises:
            TransportError: the responder could not be reached or did not
                answer with an OCSP response.
        """
        ...


class AiohttpOcspClient:
    """:class:`OcspClient` over an aiohttp session owned by the caller.

    Args:
        session: created and closed in the application's ``cleanup_ctx``.
        timeout: total seconds allowed for one call.
    """

    def __init__(
        self, session: aiohttp.ClientSession, *, timeout: float = DEFAULT_OCSP_TIMEOUT
    ) -> None:
        self._session = session
        self._timeout = timeout

    async def fetch(self, url: str, request_der: bytes) -> bytes:
        """POST the request and read the whole response.

        Args:
            url: the responder URL (from the approved CA's data).
            request_der: the DER ``OCSPRequest``.

        Returns:
            The raw response body, not yet parsed or trusted.

        Raises:
            TransportError: connection failure, timeout, a status other than
                200, a content type other than ``application/ocsp-response``
                or a body larger than 64 KiB.
        """
        try:
            return await post_der(
                self._session,
                url,
                request_der,
                content_type=OCSP_REQUEST_TYPE,
                reply_type=OCSP_RESPONSE_TYPE,
                limit=MAX_OCSP_RESPONSE_BYTES,
                timeout=self._timeout,
            )
        except TransportError as exc:
            raise TransportError(
                f"OCSP responder {url} gave no OCSP response: {exc.message}",
                url=url,
                status=exc.status,
            ) from exc


class FakeOcspClient:
    """In-process :class:`OcspClient`: hands each request to ``responder``.

    Args:
        responder: ``async (url, request_der) -> response_der``; raise
            :class:`~jplink.errors.TransportError` to play an unreachable
            responder.

    Attributes:
        calls: the ``(url, request_der)`` pairs received, in order.
    """

    def __init__(self, responder: Callable[[str, bytes], Awaitable[bytes]]) -> None:
        self._responder = responder
        self.calls: list[tuple[str, bytes]] = []

    async def fetch(self, url: str, request_der: bytes) -> bytes:
        """Record the call and return what ``responder`` answers.

        Raises:
            TransportError: when ``responder`` raises it.
        """
        self.calls.append((url, request_der))
        return await self._responder(url, request_der)
