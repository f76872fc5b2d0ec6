"""The exchange's kept-alive HTTP/1.1 client against real and scripted servers."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from jplink.clients._http11_protocol import ResponseReader
from jplink.clients.http11 import Http11Pool, endpoint
from jplink.errors import CertificateValidationError, TransportError
from tests.support.tls import loopback_tls

LIMIT = 1 << 20
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Scripted:
    """A TCP server whose connections run ``handler``; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(r, w)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            w.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/svc?x=1"

    async def read_request(self, r: asyncio.StreamReader) -> bytes:
        head = await r.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        request = head + await r.readexactly(length)
        self.requests.append(request)
        return request


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[Handler], Awaitable[Scripted]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> Scripted:
        s = Scripted(handler)
        s.server = await asyncio.start_server(s._serve, "127.0.0.1", 0)
        servers.append(s.server)
        return s

    yield start
    for server in servers:
        server.close()


def _answer(body: bytes, *extra: str) -> bytes:
    fields = "".join(f"{f}\r\n" for f in extra)
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n{fields}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def test_real_server_keep_alive_and_concurrency(aiohttp_server: Any) -> None:
    peers: set[object] = set()

    async def echo(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]
        body = await request.read()
        return web.Response(
            body=body[::-1],
            content_type="text/xml",
            headers={"X-Path": request.path_qs, "X-Type": request.content_type},
        )

    app = web.Application()
    app.router.add_post("/{tail:.*}", echo)
    server = await aiohttp_server(app)
    url = str(server.make_url("/a/b?q=1"))
    pool = Http11Pool()
    try:
        for n in range(5):
            resp = await pool.post(
                url, b"abc%d" % n, {"Content-Type": "text/xml"}, timeout=5, limit=LIMIT
            )
            assert (resp.status, resp.body) == (200, b"%dcba" % n)
            assert resp.headers["x-path"] == "/a/b?q=1"
            assert resp.headers["CONTENT-TYPE"].startswith("text/xml")
        assert len(peers) == 1  # one kept-alive connection for five requests
        results = await asyncio.gather(
            *(
                pool.post(url, b"%d" % n, {}, timeout=5, limit=LIMIT)
                for n in range(10, 18)
            )
        )
        assert [r.body for r in results] == [
            str(n).encode()[::-1] for n in range(10, 18)
        ]
        count = len(peers)
        assert 1 < count <= 9  # concurrent requests needed more connections
        for _ in range(8):
            await pool.post(url, b"x", {}, timeout=5, limit=LIMIT)
        assert len(peers) == count  # ... which are reused afterwards
    finally:
        pool.close()
    with pytest.raises(TransportError, match="pool closed") as caught:
        await pool.post(url, b"x", {}, timeout=5, limit=LIMIT)
    assert caught.value.request_sent is False
    with pytest.raises(TransportError, match="pool closed"):
        await pool.prepare(url)  # no connection is opened into a closed pool


async def test_chunked_close_delimited_and_interim_responses(scripted: Any) -> None:
    async def chunked(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            await s.read_request(r)
            w.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-T: 1\r\n\r\n"
            )
            await w.drain()

    s = await scripted(chunked)
    pool = Http11Pool()
    for _ in range(2):
        resp = await pool.post(s.url, b"q", {}, timeout=5, limit=LIMIT)
        assert resp.body == b"hello world"
    assert s.connections == 1
    # The request as written: target with query, Host, our fields, length.
    assert s.requests[0].startswith(b"POST /svc?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert s.requests[0].endswith(b"Content-Length: 1\r\n\r\nq")

    async def to_close(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await c.read_request(r)
        w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\npart one,")
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(b" part two")
        await w.drain()

    c = await scripted(to_close)
    for _ in range(2):
        resp = await pool.post(c.url, b"q", {}, timeout=5, limit=LIMIT)
        assert (resp.status, resp.body) == (200, b"part one, part two")
    assert c.connections == 2  # a close-delimited answer ends its connection
    pool.close()


@pytest.mark.parametrize(
    ("answer", "match", "status"),
    [
        (_answer(b"x" * 2000), "larger than 1000 bytes", 200),
        (b"SPAM / 1.1\r\n\r\n", "invalid HTTP response", None),
        (_answer(b"\x1f\x8b", "Content-Encoding: gzip"), "gzip-coded", 200),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "transfer coding",
            200,
        ),
        (
            b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n",
            "too large a header",
            None,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            "ConnectionReset",
            None,
        ),
    ],
)
async def test_unusable_answers_are_transport_errors(
    scripted: Any, answer: bytes, match: str, status: int | None
) -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await s.read_request(r)
        w.write(answer)
        await w.drain()

    s = await scripted(handler)
    pool = Http11Pool()
    with pytest.raises(TransportError, match=match) as caught:
        await pool.post(s.url, b"q", {}, timeout=5, limit=1000)
    assert caught.value.code == "NetworkError"
    assert caught.value.request_sent
    assert caught.value.status == status
    # The connection that carried it is never reused.
    with pytest.raises(TransportError):
        await pool.post(s.url, b"q", {}, timeout=5, limit=1000)
    assert s.connections == 2
    pool.close()


async def test_failures_say_whether_the_request_left(
    scripted: Any, unused_tcp_port: int
) -> None:
    pool = Http11Pool()
    refused = f"http://127.0.0.1:{unused_tcp_port}/"
    with pytest.raises(TransportError, match="ConnectionRefusedError") as caught:
        await pool.post(refused, b"q", {}, timeout=5, limit=LIMIT)
    assert caught.value.request_sent is False
    for bad in (
        "ftp://127.0.0.1/x",
        "http:///nohost",
        "http://h:99999/",
        "http://h/a b",
    ):
        with pytest.raises(TransportError, match="Cannot call") as caught:
            await pool.post(bad, b"q", {}, timeout=5, limit=LIMIT)
        assert caught.value.request_sent is False

    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await s.read_request(r)
        await asyncio.sleep(10)

    s = await scripted(silent)
    with pytest.raises(TransportError, match="did not answer in time") as caught:
        await pool.post(s.url, b"q", {}, timeout=0.2, limit=LIMIT)
    assert caught.value.request_sent is True
    assert len(s.requests) == 1

    async def hang_up(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await h.read_request(r)

    h = await scripted(hang_up)
    with pytest.raises(TransportError, match="ConnectionResetError") as caught:
        await pool.post(h.url, b"q", {}, timeout=5, limit=LIMIT)
    assert caught.value.request_sent is True
    pool.close()


async def test_idle_connections_closed_by_the_server_or_stale_are_not_used(
    scripted: Any,
) -> None:
    async def once_then_close(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await s.read_request(r)
        w.write(_answer(b"ok"))
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(b"HTTP/1.1 200 OK\r\n")  # unasked bytes while idle (or plain EOF)

    s = await scripted(once_then_close)
    pool = Http11Pool()
    for _ in range(3):
        assert (await pool.post(s.url, b"q", {}, timeout=5, limit=LIMIT)).body == b"ok"
        await asyncio.sleep(0.15)  # the server's close / stray bytes arrive
    assert s.connections == 3 and len(s.requests) == 3  # every request answered
    pool.close()

    async def keep(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            await k.read_request(r)
            w.write(_answer(b"ok"))
            await w.drain()

    k = await scripted(keep)
    stale = Http11Pool(keepalive_seconds=0.0)
    for _ in range(3):
        await stale.post(k.url, b"q", {}, timeout=5, limit=LIMIT)
    assert k.connections == 3  # idle for longer than 0 s: not reused
    stale.close()


@pytest.mark.parametrize("later", [False, True])
async def test_bytes_nobody_asked_for_end_the_connection(
    scripted: Any, later: bool
) -> None:
    """A connection that carried more than the answer is never reused, whether
    the extra bytes came with the answer or while it was idle."""

    async def extra(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            await s.read_request(r)
            stray = _answer(b"stray")
            if later:
                w.write(_answer(b"ok"))
                await w.drain()
                await asyncio.sleep(0.05)
                w.write(stray)
            else:
                w.write(_answer(b"ok") + stray)
            await w.drain()

    s = await scripted(extra)
    pool = Http11Pool()
    for _ in range(3):
        assert (await pool.post(s.url, b"q", {}, timeout=5, limit=LIMIT)).body == b"ok"
        await asyncio.sleep(0.15)
    assert s.connections == 3
    pool.close()


async def test_header_fields_and_credentials(scripted: Any) -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await s.read_request(r)
        w.write(_answer(b"ok", "Set-Cookie: a=1", "Set-Cookie: b=2"))
        await w.drain()

    s = await scripted(handler)
    pool = Http11Pool()
    port = s.url.split(":")[2].split("/")[0]
    resp = await pool.post(
        f"http://us%20er:p%40ss@127.0.0.1:{port}/", b"", {"SOAPAction": '"x"'},
        timeout=5, limit=LIMIT,
    )  # fmt: skip
    assert resp.headers.getall("set-cookie") == ["a=1", "b=2"]
    sent = s.requests[0].decode()
    assert "Authorization: Basic dXMgZXI6cEBzcw==\r\n" in sent  # "us er:p@ss"
    assert 'SOAPAction: "x"\r\n' in sent
    for fields in (
        {"X-A": "1\r\nX-Injected: 1"},
        {"X-A": "nul\x00"},
        {"Host": "elsewhere"},
        {"content-length": "1"},
        {"Bad Name": "1"},
    ):
        with pytest.raises(ValueError):
            await pool.post(s.url, b"", fields, timeout=5, limit=LIMIT)
    assert len(s.requests) == 1
    pool.close()
    assert endpoint("https://[::1]/p").authority == "[::1]"
    assert endpoint("http://h:8080").target == "/"


async def test_tls_new_connections_are_checked_before_the_request(
    tmp_path: Path,
) -> None:
    tls = loopback_tls(tmp_path)
    server_ctx, client_ctx, der = tls.server, tls.client, tls.der
    received: list[bytes] = []

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                received.append(head)
                await r.readexactly(1)
                w.write(_answer(b"secret"))
                await w.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            w.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_ctx)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    seen: list[bytes] = []

    async def check(transport: asyncio.Transport) -> None:
        seen.append(
            transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
        )

    pool = Http11Pool()
    # A connection opened ahead (a candidate's probe) carries the requests.
    await pool.prepare(url, tls=client_ctx, on_connect=check)
    assert seen == [der] and received == []
    for _ in range(3):
        resp = await pool.post(
            url, b"q", {}, timeout=5, limit=LIMIT, tls=client_ctx, on_connect=check
        )
        assert resp.body == b"secret"
    assert seen == [der]  # one new connection, checked once

    async def refuse(transport: asyncio.Transport) -> None:
        raise CertificateValidationError("no", code="SslAuthenticationFailed")

    other = Http11Pool()
    with pytest.raises(CertificateValidationError):
        await other.post(
            url, b"q", {}, timeout=5, limit=LIMIT, tls=client_ctx, on_connect=refuse
        )
    await asyncio.sleep(0.1)
    assert len(received) == 3  # nothing of the refused request was written
    # Without the certificate as a CA the handshake fails: nothing was sent.
    with pytest.raises(TransportError) as caught:
        await other.post(url, b"q", {}, timeout=5, limit=LIMIT)
    assert caught.value.request_sent is False
    pool.close()
    other.close()
    server.close()


class _FakeTransport:
    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close

    def write(self, data: bytes) -> None:
        pass


@given(
    body=st.binary(max_size=300),
    chunked=st.booleans(),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=30),
)
@settings(max_examples=200, deadline=None)
def test_a_response_split_anywhere_reads_the_same(
    body: bytes, chunked: bool, cuts: list[int]
) -> None:
    """The reader gives the same status, fields and body however the bytes
    of the answer are cut into reads."""
    if chunked:
        pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
        wire = b"HTTP/1.1 201 Created\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        wire += b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:
        wire = _answer(body, "X-A: 1").replace(b"200 OK", b"201 Created")

    async def read() -> tuple[int, list[tuple[str, str]], bytes]:
        reader = ResponseReader()
        reader.connection_made(_FakeTransport())  # type: ignore[arg-type]
        future = reader.expect(LIMIT)
        at = 0
        for cut in [*cuts, len(wire)]:
            if at >= len(wire):
                break
            reader.data_received(wire[at : at + cut])
            at += cut
        assert future.done()
        assert reader.reusable
        return future.result()

    status, fields, got = asyncio.run(read())
    assert (status, got) == (201, body)
    assert ("X-A", "1") in fields
