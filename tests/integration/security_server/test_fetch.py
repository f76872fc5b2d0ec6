"""Fetching a WSDL over HTTP from a real server on loopback."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from jplink.errors import InvalidRequest, TransportError
from security_server.fetch import fetch_description
from wsdl import parse_wsdl

from .helpers import make_wsdl


async def test_fetch_description() -> None:
    body = make_wsdl()

    async def wsdl(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/xml")

    app = web.Application()
    app.router.add_get("/wsdl", wsdl)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/wsdl"))
        got = await fetch_description(url)
        assert got == body
        assert [op.name for op in parse_wsdl(got).operations] == [
            "getTrades",
            "getBalance",
        ]
        with pytest.raises(TransportError) as missing:
            await fetch_description(str(server.make_url("/nothing")))
        assert missing.value.status == 404
    finally:
        await server.close()
    with pytest.raises(TransportError):
        await fetch_description(url, timeout=2)
    with pytest.raises(InvalidRequest):
        await fetch_description("file:///etc/passwd")
