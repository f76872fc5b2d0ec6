"""One server HTTP/1.1 connection: answer its requests in order.

Used by :class:`jplink.http11_server.Http11Server`. Requests are read by
:class:`~jplink._http11_server_reader.RequestReader`; this class runs the
handler for one request at a time (pipelined requests wait their turn,
answers keep their order), writes the answers, and closes the connection
when HTTP says so, after an error, or when it has been idle too long.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from http import HTTPStatus
from typing import cast

from ._http11_server_reader import Item, RequestReader
from ._http11_server_types import (
    Handler,
    Refused,
    ServerLimits,
    response_head,
)

__all__ = ["MAX_QUEUED", "RequestProtocol"]

_log = logging.getLogger(__name__)


#: Pipelined requests read ahead of the one being answered before reading
#: pauses.
MAX_QUEUED = 16


class RequestProtocol(RequestReader, asyncio.Protocol):
    """A server connection answering one request at a time, in order."""

    def __init__(
        self, handler: Handler, limits: ServerLimits, tracker: set[RequestProtocol]
    ) -> None:
        super().__init__(limits)
        self._handler = handler
        self._tracker = tracker
        self._transport: asyncio.Transport | None = None
        self._queue: deque[Item] = deque()
        self._task: asyncio.Task[None] | None = None
        self._broken = False  # nothing more is parsed
        self._closing = False
        self._paused = False
        self._drained: asyncio.Future[None] | None = None
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def busy(self) -> bool:
        """A request is being answered or waits its turn."""
        return self._task is not None or bool(self._queue)

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses.)
        self._transport = cast(asyncio.Transport, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self._tls = True
            self._peer = ssl_object.getpeercert(binary_form=True)
        self._tracker.add(self)
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._timer = loop.call_later(self._limits.idle_seconds, self._idle_check)

    def data_received(self, data: bytes) -> None:
        if self._broken:
            return
        self._last = asyncio.get_running_loop().time()
        self._feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        # A handler under way finishes (the exchange is logged); its answer
        # goes nowhere. Requests still waiting are dropped.
        self._closing = self._broken = True
        self._queue.clear()
        self._tracker.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        self.resume_writing()

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _send_continue(self) -> None:
        # Not while an earlier answer is pending: the interim answer would
        # arrive before it (the client sends the body after a wait anyway,
        # RFC 9110 §10.1.1).
        if not self.busy and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _push(self, item: Item) -> None:
        if isinstance(item, Refused):
            self._broken = True  # the framing can no longer be trusted
        self._queue.append(item)
        if len(self._queue) >= MAX_QUEUED and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._answer_all())

    async def _answer_all(self) -> None:
        try:
            while self._queue and not self._closing:
                item = self._queue.popleft()
                if (
                    self._paused
                    and len(self._queue) < MAX_QUEUED // 2
                    and not self._broken
                ):
                    self._paused = False
                    if self._transport is not None:
                        self._transport.resume_reading()
                if isinstance(item, Refused):
                    self._refuse(item.status, str(item))
                    return
                request, keep_alive, http10 = item
                try:
                    reply = await self._handler(request)
                    close = not keep_alive
                    head = response_head(
                        reply.status, reply.headers, len(reply.body), close, http10
                    )
                except Exception:  # a bug in the handler: an answer, never silence
                    _log.exception(
                        "HTTP handler failed for %s %s", request.method, request.target
                    )
                    self._refuse(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
                    return
                self._write(head, b"" if request.method == "HEAD" else reply.body)
                if close:
                    self._close()
                    return
                if self._drained is not None:
                    # A client that stops reading its answers holds the
                    # connection no longer than an idle one.
                    try:
                        await asyncio.wait_for(self._drained, self._limits.idle_seconds)
                    except TimeoutError:
                        self.abort()
                        return
        finally:
            self._task = None
            self._last = asyncio.get_running_loop().time()

    def _write(self, head: bytes, body: bytes) -> None:
        transport = self._transport
        if transport is None or self._closing or transport.is_closing():
            return
        if len(body) < 65536:
            transport.write(head + body)
        else:
            transport.writelines((head, body))

    def _refuse(self, status: HTTPStatus, reason: str) -> None:
        """Answer an unusable request with ``status`` and close."""
        body = reason.encode()
        headers = (("Content-Type", "text/plain; charset=utf-8"),)
        self._queue.clear()
        self._write(response_head(status, headers, len(body), True, False), body)
        self._close()

    def _close(self) -> None:
        self._closing = self._broken = True
        if self._transport is not None:
            self._transport.close()

    def _idle_check(self) -> None:
        # One timer per connection, re-armed for the time left: cheaper than
        # a new timer for every read.
        loop = asyncio.get_running_loop()
        left = self._last + self._limits.idle_seconds - loop.time()
        if self._closing:
            return
        if self.busy or left > 0:
            delay = self._limits.idle_seconds if self.busy else left
            self._timer = loop.call_later(delay, self._idle_check)
            return
        self._close()

    def abort(self) -> None:
        """Close at once, whatever is under way (shutdown)."""
        self._closing = self._broken = True
        if self._transport is not None:
            self._transport.abort()

    def close_if_idle(self) -> bool:
        """Close the connection unless a request is being answered.

        Returns:
            True if it was closed (or was closing already).
        """
        if not self.busy:
            self._close()
        return self._closing
