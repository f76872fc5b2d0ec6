"""The OCSP transport against small loopback responders.

What the transport must refuse is everything that is not an OCSP response at
the HTTP level; whether the bytes prove anything is verify_ocsp_response's
job (tested with the real responder in the central-server tests).
"""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from jplink.clients.ocsp import (
    OCSP_REQUEST_TYPE,
    OCSP_RESPONSE_TYPE,
    AiohttpOcspClient,
    FakeOcspClient,
)
from jplink.errors import TransportError
from tests.support.ports import free_port

REQUEST = b"\x30\x03\x02\x01\x00"
ANSWER = b"\x30\x03\x0a\x01\x00"


async def _server(aiohttp_server, handler):
    app = web.Application()
    app.router.add_post("/ocsp", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("/ocsp"))


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


async def test_posts_der_and_returns_the_body(aiohttp_server, session):
    seen = {}

    async def handler(request: web.Request) -> web.Response:
        seen["type"] = request.content_type
        seen["accept"] = request.headers.get("Accept")
        seen["body"] = await request.read()
        return web.Response(body=ANSWER, content_type=OCSP_RESPONSE_TYPE)

    url = await _server(aiohttp_server, handler)
    assert await AiohttpOcspClient(session).fetch(url, REQUEST) == ANSWER
    assert seen == {
        "type": OCSP_REQUEST_TYPE,
        "accept": OCSP_RESPONSE_TYPE,
        "body": REQUEST,
    }


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (lambda: web.Response(status=503, body=b"busy"), "HTTP 503"),
        (
            lambda: web.Response(body=b"<html/>", content_type="text/html"),
            "text/html",
        ),
        (
            lambda: web.Response(
                body=b"\x00" * (65 * 1024), content_type=OCSP_RESPONSE_TYPE
            ),
            "larger than",
        ),
        (
            lambda: web.Response(
                status=302, headers={"Location": "http://127.0.0.1:9/elsewhere"}
            ),
            "HTTP 302",
        ),
    ],
)
async def test_non_ocsp_answers_are_transport_errors(
    aiohttp_server, session, response, match
):
    async def handler(request: web.Request) -> web.StreamResponse:
        return response()

    url = await _server(aiohttp_server, handler)
    with pytest.raises(TransportError, match=match) as info:
        await AiohttpOcspClient(session).fetch(url, REQUEST)
    assert info.value.url == url
    assert f"OCSP responder {url}" in info.value.message


async def test_unreachable_responder_is_a_transport_error(session):
    port = free_port()
    url = f"http://127.0.0.1:{port}/ocsp"
    with pytest.raises(TransportError, match=f"OCSP responder {url}"):
        await AiohttpOcspClient(session, timeout=5).fetch(url, REQUEST)


async def test_fake_client_records_calls():
    async def responder(url: str, der: bytes) -> bytes:
        if "down" in url:
            raise TransportError("down", url=url)
        return ANSWER

    fake = FakeOcspClient(responder)
    assert await fake.fetch("http://ca/ocsp", REQUEST) == ANSWER
    with pytest.raises(TransportError):
        await fake.fetch("http://down/ocsp", REQUEST)
    assert fake.calls == [("http://ca/ocsp", REQUEST), ("http://down/ocsp", REQUEST)]
