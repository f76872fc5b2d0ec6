"""Client of an RFC 3161 time-stamping authority (HTTP POST, RFC 3161 §3.4).

PROTOCOLS.md §12.2: the message log sends its ``TimeStampReq`` "as HTTP POST
``Content-type: application/timestamp-query`` to the ``approvedTSA/url``
entries in order". Split as STYLE.md §4 rule 2 asks: the request comes from
:func:`jplink.security.tsp.build_timestamp_request`, the answer is checked by
:func:`jplink.security.tsp.verify_timestamp_response` (the trust decision,
made by the caller against the approved TSA certificate), and this module only
moves bytes: :class:`AiohttpTsaClient` over HTTP and :class:`FakeTsaClient` in
process, for tests.

The transport refuses what is not a time-stamp reply at the HTTP level (a
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
    "DEFAULT_TSA_TIMEOUT",
    "TSA_QUERY_TYPE",
    "TSA_REPLY_TYPE",
    "AiohttpTsaClient",
    "FakeTsaClient",
    "TsaClient",
]

#: RFC 3161 §3.4: "Content-Type: application/timestamp-query".
TSA_QUERY_TYPE = "application/timestamp-query"
#: RFC 3161 §3.4: "Content-Type: application/timestamp-reply".
TSA_REPLY_TYPE = "application/timestamp-reply"
#: A reply carries one token and the TSA's certificates: a few KiB.
MAX_TSA_REPLY_BYTES = 256 * 1024
#: Seconds allowed for one time-stamp call unless the caller says otherwise.
DEFAULT_TSA_TIMEOUT = 20.0


class TsaClient(Protocol):
    """Sends a DER ``TimeStampReq`` and returns the DER ``TimeStampResp`` bytes."""

    async def fetch(self, url: str, request_der: bytes) -> bytes:
        """POST ``request_der`` to the TSA at ``url``.

        Raises:
            TransportError: the TSA could not be reached or did not answer
                with a time-stamp reply.
        """
        ...


class AiohttpTsaClient:
    """:class:`TsaClient` over an aiohttp session owned by the caller.

    Args:
        session: created and closed in the application's ``cleanup_ctx``.
        timeout: total seconds allowed for one call.
    """

    def __init__(
        self, session: aiohttp.ClientSession, *, timeout: float = DEFAULT_TSA_TIMEOUT
    ) -> None:
        self._session = session
        self._timeout = timeout

    async def fetch(self, url: str, request_der: bytes) -> bytes:
        """POST the request and read the whole reply.

        Args:
            url: the TSA URL (``approvedTSA/url``).
            request_der: the DER ``TimeStampReq``.

        Returns:
            The raw reply body, not yet parsed or trusted.

        Raises:
            TransportError: connection failure, timeout, a status other than
                200, a content type other than ``application/timestamp-reply``
                or a body larger than 256 KiB.
        """
        try:
            return await post_der(
                self._session,
                url,
                request_der,
                content_type=TSA_QUERY_TYPE,
                reply_type=TSA_REPLY_TYPE,
                limit=MAX_TSA_REPLY_BYTES,
                timeout=self._timeout,
            )
        except TransportError as exc:
            raise TransportError(
                f"TSA {url} gave no time-stamp reply: {exc.message}",
                url=url,
                status=exc.status,
            ) from exc


class FakeTsaClient:
    """In-process :class:`TsaClient`: hands each request to ``responder``.

    Args:
        responder: ``async (url, request_der) -> reply_der``; raise
            :class:`~jplink.errors.TransportError` to play an unreachable TSA.

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
