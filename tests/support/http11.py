"""Run a :class:`jplink.http11_server.Http11Server` on a loopback port."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator

import aiohttp

from jplink.http11_server import Http11Server


@contextlib.asynccontextmanager
async def listening(
    server: Http11Server, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """Listen on a free 127.0.0.1 port (yielded) until the block exits."""
    await server.listen("127.0.0.1", 0, ssl_context=ssl_context)
    try:
        yield server.ports[-1]
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def session_for(server: Http11Server) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session whose relative URLs go to ``server`` (plain HTTP)."""
    async with (
        listening(server) as port,
        aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session,
    ):
        yield session
