"""A lean HTTP/1.1 server for the exchange's hot ports.

The security server's proxies answer one kind of request millions of times:
a POST with a whole body, answered with a whole body. aiohttp's server spends
~120-150 µs of CPU on each (request and response objects, routing, stream
readers); this one, built on httptools (llhttp, the parser aiohttp and
uvicorn use), does the same in about a third of that (``python -m
bench.bench_http11``). What it does:

- HTTP/1.1 and 1.0, kept-alive connections (``Connection: close`` and 1.0
  without keep-alive honoured), request bodies by ``Content-Length`` or
  chunked coding, read in full before the handler runs;
- ``Expect: 100-continue`` answered (any other expectation: 417);
- pipelined requests answered one at a time, in order (reading pauses when
  16 wait);
- limits: body size (413), header section (431), malformed requests or
  upgrades (400); each of these closes the connection after the answer;
- a connection with no request under way is closed after ``idle_seconds``
  (also one whose request stopped arriving half-way);
- TLS through the listener's ``ssl`` context; the client's certificate, if
  any, reaches the handler;
- a handler that raises gets a 500 and a closed connection (and a log line),
  never silence; a client that leaves does not cancel its handler.

:meth:`Http11Server.close` stops listening, closes idle connections, lets the
requests under way finish (up to a grace period) and then closes the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

from ._http11_server_protocol import RequestProtocol
from ._http11_server_types import Handler, HttpReply, HttpRequest, ServerLimits

__all__ = ["Handler", "Http11Server", "HttpReply", "HttpRequest", "ServerLimits"]


class Http11Server:
    """Listeners that pass whole requests to one handler.

    Args:
        handler: answers a request (called for one request of a connection
            at a time).
        limits: body and header limits, idle timeout.
    """

    def __init__(self, handler: Handler, limits: ServerLimits) -> None:
        self._handler = handler
        self._limits = limits
        self._connections: set[RequestProtocol] = set()
        self._servers: list[asyncio.Server] = []

    def protocol(self) -> RequestProtocol:
        """A protocol for one new connection (an asyncio protocol factory)."""
        return RequestProtocol(self._handler, self._limits, self._connections)

    async def listen(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        reuse_port: bool = False,
    ) -> asyncio.Server:
        """Accept connections on ``host:port`` (TLS with ``ssl_context``).

        Raises:
            OSError: the address cannot be bound.
        """
        server = await asyncio.get_running_loop().create_server(
            self.protocol,
            host,
            port,
            ssl=ssl_context,
            reuse_address=True,
            reuse_port=reuse_port or None,
            backlog=1024,
        )
        self._servers.append(server)
        return server

    @property
    def ports(self) -> list[int]:
        """The bound ports (a listener on port 0 gets one from the kernel)."""
        return [
            s.getsockname()[1]
            for server in self._servers
            for s in server.sockets
            if s.family in (socket.AF_INET, socket.AF_INET6)
        ]

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Stop listening; finish requests under way, then close everything."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        while True:
            busy = [c for c in list(self._connections) if not c.close_if_idle()]
            if not busy or loop.time() >= deadline:
                break
            await asyncio.sleep(0.02)
        for connection in list(self._connections):
            connection.abort()
        for server in servers:
            # (uvloop's wait_closed also waits for the connections to go;
            # they were all aborted above, so this is short.)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=5)
