"""Kept-alive HTTP/1.1 connections for the message exchange's outbound POSTs.

The consumer's security server POSTs every transport message to a peer (port
5500), the provider's POSTs every request to its service. aiohttp's client
spent ~0.2 ms of CPU on each such request (session, request and response
objects, trace hooks, cookie jar, timer handles) against ~0.05 ms here
(``bench/bench_http11.py`` measures both in one run): one protocol object per
connection and httptools (llhttp, Node.js's parser) for the response. It does
what the exchange needs and no more: POST with a whole body and
``Content-Length``; the response read in full (``Content-Length``, chunked, or
to the close of the connection) up to a size limit; keep-alive; timeouts.
The other outbound calls (OCSP, TSA, global configuration) keep aiohttp.

Errors are :class:`TransportError` (code ``NetworkError``) whose
``request_sent`` says whether any byte of the request may have left: only a
request that was not sent may be tried on another server.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from multidict import CIMultiDict, CIMultiDictProxy

from ..errors import TransportError
from ._http11_protocol import ResponseFailed, ResponseReader
from ._http11_request import Endpoint, endpoint, request_head, tls_context

__all__ = ["Endpoint", "Http11Pool", "Http11Response", "endpoint", "tls_context"]

#: Connections idle longer than this are closed rather than reused (seconds).
DEFAULT_KEEPALIVE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Http11Response:
    """A response read in full."""

    status: int
    #: Case-insensitive, read-only.
    headers: CIMultiDictProxy[str]
    body: bytes


_Key = tuple[str, int, ssl.SSLContext | None]


class Http11Pool:
    """Kept-alive connections per (host, port, TLS context), no size limit.

    Args:
        keepalive_seconds: an idle connection older than this is closed.
    """

    def __init__(self, *, keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS) -> None:
        self._keepalive = keepalive_seconds
        self._idle: dict[_Key, list[ResponseReader]] = {}
        self._busy: set[ResponseReader] = set()
        self._closed = False

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        timeout: float,
        limit: int,
        connect_timeout: float | None = None,
        tls: ssl.SSLContext | None = None,
        on_connect: Callable[[asyncio.Transport], Awaitable[None]] | None = None,
    ) -> Http11Response:
        """POST ``body`` and read the whole response (any status).

        Args:
            url: ``http://`` or ``https://``.
            timeout: seconds for the whole call, connecting included.
            limit: largest response body accepted, in bytes.
            connect_timeout: seconds for TCP and TLS set-up of a new connection.
            tls: the TLS context of an ``https`` URL (default: verify with
                the system's CAs); ignored for ``http``.
            on_connect: awaited with each NEW connection before any byte of
                the request is written; what it raises closes the connection
                and propagates unchanged (a peer check).

        Raises:
            TransportError: cannot connect, the connection failed, the answer
                was late, too large or not HTTP/1.x.
            ValueError: a header field that cannot be sent (a caller's mistake).
        """
        ep, key = self._where(url, tls)
        head = request_head(ep, headers, len(body))
        conn: ResponseReader | None = None
        sent = False
        try:
            async with asyncio.timeout(timeout):
                conn = self._reuse(key)
                if conn is None:
                    conn = await self._connect(ep, key, connect_timeout, on_connect)
                self._busy.add(conn)
                sent = True
                response = conn.expect(limit)
                conn.write(head, body)
                status, fields, data = await response
        except TimeoutError as exc:
            self._discard(conn)
            raise TransportError(
                f"{ep.url} did not answer in time", url=ep.url, request_sent=sent
            ) from exc
        except ResponseFailed as exc:
            self._discard(conn)
            raise TransportError(
                f"{ep.url} {exc.reason}", url=ep.url, status=exc.status
            ) from exc
        except OSError as exc:  # connection refused, reset, TLS failure
            self._discard(conn)
            raise TransportError(
                f"Calling {ep.url} failed: {type(exc).__name__}",
                url=ep.url,
                request_sent=sent,
            ) from exc
        except BaseException:  # cancelled, or on_connect refused
            self._discard(conn)
            raise
        self._busy.discard(conn)
        self._park(key, conn)
        return Http11Response(status, CIMultiDictProxy(CIMultiDict(fields)), data)

    async def prepare(
        self,
        url: str,
        *,
        connect_timeout: float | None = None,
        tls: ssl.SSLContext | None = None,
        on_connect: Callable[[asyncio.Transport], Awaitable[None]] | None = None,
    ) -> None:
        """Open (and check) a new connection now, kept for the next request.

        Raises:
            TransportError: cannot connect (``request_sent`` is False).
            ValueError, or what ``on_connect`` raises: as :meth:`post`.
        """
        ep, key = self._where(url, tls)
        self._park(key, await self._connect(ep, key, connect_timeout, on_connect))

    def _where(self, url: str, tls: ssl.SSLContext | None) -> tuple[Endpoint, _Key]:
        try:
            ep = endpoint(url)
        except ValueError as exc:  # a configured address that is no URL
            raise TransportError(
                f"Cannot call {url!r}: {exc}", url=url, request_sent=False
            ) from exc
        if self._closed:
            raise TransportError(
                f"Calling {ep.url} failed: pool closed", url=ep.url, request_sent=False
            )
        if not ep.https:
            return ep, (ep.host, ep.port, None)
        return ep, (ep.host, ep.port, tls or tls_context(True))

    def _park(self, key: _Key, conn: ResponseReader) -> None:
        """Keep ``conn`` for the next request to ``key``, or close it."""
        if conn.reusable and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(key, []).append(conn)
        else:
            conn.close()

    def _reuse(self, key: _Key) -> ResponseReader | None:
        stack = self._idle.get(key)
        if not stack:
            return None
        oldest = time.monotonic() - self._keepalive
        # Most recently used first; the stale bottom of the stack is closed.
        while stack and stack[0].idle_since < oldest:
            stack.pop(0).close()
        while stack:
            conn = stack.pop()
            if conn.reusable:
                return conn
            conn.close()
        return None

    async def _connect(
        self,
        ep: Endpoint,
        key: _Key,
        connect_timeout: float | None,
        on_connect: Callable[[asyncio.Transport], Awaitable[None]] | None,
    ) -> ResponseReader:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                transport, conn = await loop.create_connection(
                    ResponseReader, ep.host, ep.port, ssl=key[2]
                )
        except TimeoutError as exc:  # nothing was sent: another server may do
            raise TransportError(
                f"Cannot connect to {ep.url} in time", url=ep.url, request_sent=False
            ) from exc
        except OSError as exc:
            raise TransportError(
                f"Calling {ep.url} failed: {type(exc).__name__}",
                url=ep.url,
                request_sent=False,
            ) from exc
        if on_connect is not None:
            try:
                await on_connect(transport)
            except BaseException:
                conn.close()
                raise
        return conn

    def _discard(self, conn: ResponseReader | None) -> None:
        if conn is not None:
            self._busy.discard(conn)
            conn.close()

    def close(self) -> None:
        """Close every connection; later calls fail with ``NetworkError``."""
        self._closed = True
        for stack in self._idle.values():
            for conn in stack:
                conn.close()
        self._idle.clear()
        for conn in self._busy:
            conn.close()
        self._busy.clear()
