"""One client HTTP/1.1 connection: write a request, read its response.

Used by :class:`jplink.clients.http11.Http11Pool`. The response is parsed by
httptools (llhttp); this class keeps the state of the one response being
waited for and refuses everything else: bytes that arrive when no response
is expected, a second response, an upgrade, a content coding, a body or
header section over its limit.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools

__all__ = ["MAX_HEADER_BYTES", "ResponseFailed", "ResponseReader"]

#: Largest response header section accepted, in bytes.
MAX_HEADER_BYTES = 64 * 1024

_Result = tuple[int, list[tuple[str, str]], bytes]


class ResponseFailed(Exception):
    """The peer's answer cannot be used; the connection is closed."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class ResponseReader(asyncio.Protocol):
    """A client connection carrying one request at a time."""

    def __init__(self) -> None:
        self.idle_since = 0.0
        self._transport: asyncio.Transport | None = None
        self._closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[_Result] | None = None
        self._limit = 0
        self._keep_alive = True  # until an answer says otherwise
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._fields: list[tuple[str, str]] = []
        self._field_bytes = 0
        self._body: list[bytes] = []
        self._size = 0
        self._headers_done = False
        self._framed = False  # Content-Length or chunked: the end is known

    # -- used by the pool

    @property
    def reusable(self) -> bool:
        """Open, idle and willing to carry another request."""
        transport = self._transport
        return (
            not self._closed
            and self._waiter is None
            and self._keep_alive
            and transport is not None
            and not transport.is_closing()
        )

    def expect(self, limit: int) -> asyncio.Future[_Result]:
        """The future of the next response (its body at most ``limit`` bytes)."""
        if self._closed or self._transport is None:
            raise ConnectionResetError("The connection is closed")
        self._reset()
        self._limit = limit
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    def write(self, head: bytes, body: bytes) -> None:
        """Send one request (head and body in one write)."""
        assert self._transport is not None
        self._transport.write(head + body)

    def close(self) -> None:
        """Close the connection; a response being waited for fails."""
        self._closed = True
        if self._transport is not None:
            self._transport.close()
        self._fail(ConnectionResetError("The connection was closed"))

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses.)
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # RFC 9112 §9.3.2 aside, a server may not answer what was not
            # asked: the connection's framing can no longer be trusted.
            self._abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ResponseFailed("switched protocols", self._status), abort=True)
        except httptools.HttpParserError as exc:
            # (A callback's error is already the waiter's: this is a no-op.)
            reason = f"sent an invalid HTTP response: {exc}"
            self._fail(ResponseFailed(reason), abort=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._waiter is not None and self._headers_done and not self._framed:
            # RFC 9112 §6.3 item 8: with neither Content-Length nor chunked
            # coding, the body ends when the server closes the connection.
            self._complete()
            return
        self._fail(
            ConnectionResetError("The connection closed before the response ended")
        )

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        if self._waiter is None:  # a second response in the same read
            self._abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._waiter is None:
            return
        self._field_bytes += len(name) + len(value) + 4
        if self._field_bytes > MAX_HEADER_BYTES:
            self._fail(ResponseFailed("sent too large a header section"), abort=True)
            return
        self._fields.append(
            (name.decode("latin-1"), value.decode("utf-8", "surrogateescape"))
        )

    def on_headers_complete(self) -> None:
        if self._waiter is None:
            return
        self._status = self._parser.get_status_code()
        names = {name.lower(): value for name, value in self._fields}
        coding = names.get("content-encoding", "identity").strip().lower()
        if coding not in ("", "identity"):
            # We never send Accept-Encoding (RFC 9110 §12.5.3): a coded body
            # is not what was asked for.
            failure = ResponseFailed(f"sent a {coding}-coded body", self._status)
            self._fail(failure, abort=True)
            return
        framing = names.get("transfer-encoding", "").strip().lower()
        if framing not in ("", "chunked"):
            reason = f"sent a body in transfer coding {framing!r}"
            self._fail(ResponseFailed(reason, self._status), abort=True)
            return
        self._framed = bool(framing) or "content-length" in names
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if self._waiter is None:
            return
        self._size += len(body)
        if self._size > self._limit:
            reason = f"sent a response larger than {self._limit} bytes"
            self._fail(ResponseFailed(reason, self._status), abort=True)
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._waiter is None:
            return
        if 100 <= self._status < 200:
            # An interim response (RFC 9110 §15.2): the final one follows.
            self._reset()
            return
        self._keep_alive = self._parser.should_keep_alive()
        self._complete()

    # -- helpers

    def _complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, self._fields, b"".join(self._body)))
        if not self._keep_alive and self._transport is not None:
            self._closed = True
            self._transport.close()

    def _fail(self, exc: BaseException, *, abort: bool = False) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if abort:
            self._abort()

    def _abort(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.abort()
