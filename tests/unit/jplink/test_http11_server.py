"""The lean HTTP/1.1 server against independent clients.

The clients are aiohttp's, ``curl`` and raw sockets writing exact bytes, so
that framing, keep-alive, pipelining, limits and shutdown are checked on the
wire, not through the server's own code.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from jplink.http11_server import Http11Server, HttpReply, HttpRequest, ServerLimits
from tests.support.tls import client_identity, loopback_tls

TIMEOUT = 5.0
DATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} GMT$"
)

Reply = Callable[[HttpRequest], Awaitable[HttpReply]]


async def _echo(req: HttpRequest) -> HttpReply:
    return HttpReply(
        200,
        b"echo:" + req.body,
        (("X-Target", req.target), ("Content-Type", "application/octet-stream")),
    )


class Recorder:
    """A handler that records every request and answers with ``reply``."""

    def __init__(self, reply: Reply = _echo) -> None:
        self.reply = reply
        self.requests: list[HttpRequest] = []

    async def __call__(self, req: HttpRequest) -> HttpReply:
        self.requests.append(req)
        return await self.reply(req)


@dataclass
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name.lower()]

    def one(self, name: str) -> str:
        values = self.all(name)
        assert len(values) == 1, (name, self.headers)
        return values[0]


def _parse_head(head: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    version, status, reason = lines[0].split(" ", 2)
    assert version == "HTTP/1.1", lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        assert name and name == name.strip(), line
        headers.append((name.lower(), value.strip()))
    return int(status), reason, headers


async def read_answer(reader: asyncio.StreamReader, head_only: bool = False) -> Answer:
    """One answer, framed by its Content-Length (no body for ``head_only``)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    status, reason, headers = _parse_head(head)
    answer = Answer(status, reason, headers, b"")
    if not head_only and status >= 200 and status not in (204, 304):
        length = int(answer.one("content-length"))
        answer.body = await asyncio.wait_for(reader.readexactly(length), TIMEOUT)
    return answer


class Conn:
    """A raw client connection."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, head_only: bool = False) -> Answer:
        return await read_answer(self.reader, head_only)

    async def rest(self, timeout: float = TIMEOUT) -> bytes:
        """Everything until the server closes (fails if it does not)."""
        chunks = []
        try:
            while chunk := await asyncio.wait_for(self.reader.read(65536), timeout):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)

    async def closed_by_server(self, timeout: float = TIMEOUT) -> None:
        """The server closes with nothing more written."""
        assert await self.rest(timeout) == b""

    async def still_open(self, wait: float = 0.1) -> None:
        """Nothing arrives and no EOF within ``wait``."""
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(self.reader.read(1), wait)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Net:
    servers: list[Http11Server] = field(default_factory=list)
    conns: list[Conn] = field(default_factory=list)

    async def serve(
        self,
        handler: Callable[[HttpRequest], Awaitable[HttpReply]],
        *,
        max_body: int = 1 << 20,
        max_header_bytes: int = 64 * 1024,
        idle_seconds: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> tuple[Http11Server, int]:
        server = Http11Server(
            handler,
            ServerLimits(
                max_body=max_body,
                max_header_bytes=max_header_bytes,
                idle_seconds=idle_seconds,
            ),
        )
        await server.listen("127.0.0.1", 0, ssl_context=ssl_context)
        self.servers.append(server)
        (port,) = server.ports
        return server, port

    async def recorded(self, **limits: Any) -> tuple[Recorder, Conn]:
        """A server answering through a new Recorder, and one connection to it."""
        rec = Recorder()
        _, port = await self.serve(rec, **limits)
        return rec, await self.connect(port)

    async def connect(self, port: int, tls: ssl.SSLContext | None = None) -> Conn:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls, server_hostname="127.0.0.1" if tls else None
        )
        conn = Conn(reader, writer)
        self.conns.append(conn)
        return conn


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    n = Net()
    yield n
    for conn in n.conns:
        conn.close()
    for server in n.servers:
        await server.close(grace_seconds=1)


async def run_curl(*args: str) -> tuple[int, bytes, str]:
    """curl's exit code, stdout and stderr (without blocking the loop)."""
    exe = shutil.which("curl")
    if exe is None:
        pytest.skip("curl is not installed (it is the independent client here)")
    proc = await asyncio.create_subprocess_exec(
        exe,
        "--silent",
        "--show-error",
        "--max-time",
        "10",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out, err.decode("utf-8", "replace")


def _post(target: str, body: bytes, *extra: str, version: str = "1.1") -> bytes:
    fields = "".join(f"{f}\r\n" for f in extra)
    return (
        f"POST {target} HTTP/{version}\r\nHost: t\r\n{fields}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _get(target: str, *extra: str, version: str = "1.1") -> bytes:
    fields = "".join(f"{f}\r\n" for f in extra)
    return f"GET {target} HTTP/{version}\r\nHost: t\r\n{fields}\r\n".encode()


# -- ordinary requests


async def test_post_with_aiohttp_keep_alive_headers_and_date(net: Net) -> None:
    async def reply(req: HttpRequest) -> HttpReply:
        return HttpReply(
            201,
            req.body[::-1],
            (("X-Target", req.target), ("X-Multi", "a"), ("X-Multi", "b")),
        )

    rec = Recorder(reply)
    _, port = await net.serve(rec)
    created: list[object] = []
    reused: list[object] = []

    async def on_create(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceConnectionCreateEndParams,
    ) -> None:
        created.append(params)

    async def on_reuse(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceConnectionReuseconnParams,
    ) -> None:
        reused.append(params)

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_create)
    trace.on_connection_reuseconn.append(on_reuse)
    url = f"http://127.0.0.1:{port}/svc/path?q=1&r=a%20b"
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        for n in range(3):
            body = b"payload-%d" % n
            async with session.post(
                url, data=body, headers={"X-Custom-Header": f"Value {n}"}
            ) as resp:
                assert resp.status == 201
                assert resp.reason == "Created"
                assert await resp.read() == body[::-1]
                assert resp.headers["X-Target"] == "/svc/path?q=1&r=a%20b"
                assert resp.headers.getall("X-Multi") == ["a", "b"]
                assert resp.headers.getall("Content-Length") == [str(len(body))]
                date = resp.headers["Date"]
                assert DATE.match(date), date
                sent = parsedate_to_datetime(date).timestamp()
                assert abs(sent - time.time()) < 5
                assert "Connection" not in resp.headers
    assert len(created) == 1  # one connection...
    assert len(reused) == 2  # ...reused for the second and third request
    assert [r.body for r in rec.requests] == [b"payload-%d" % n for n in range(3)]
    for n, req in enumerate(rec.requests):
        assert req.method == "POST"
        assert req.target == "/svc/path?q=1&r=a%20b"
        assert req.tls is False and req.peer_cert_der is None
        assert all(name == name.lower() for name in req.headers)
        assert req.headers["x-custom-header"] == f"Value {n}"
        assert req.headers["content-length"] == str(len(req.body))
        assert req.headers["host"] == f"127.0.0.1:{port}"


async def test_raw_keep_alive_serves_several_requests_on_one_connection(
    net: Net,
) -> None:
    rec, conn = await net.recorded()
    for n in range(4):
        await conn.send(_post(f"/r/{n}?x={n}", b"body %d" % n, "X-Mixed-CASE: Yes"))
        answer = await conn.answer()
        assert answer.status == 200 and answer.reason == "OK"
        assert answer.body == b"echo:body %d" % n
        assert answer.one("x-target") == f"/r/{n}?x={n}"
        assert answer.one("content-type") == "application/octet-stream"
        assert answer.one("content-length") == str(len(answer.body))
        assert DATE.match(answer.one("date"))
        assert answer.all("connection") == []
    await conn.still_open()
    assert [(r.method, r.target, r.body) for r in rec.requests] == [
        ("POST", f"/r/{n}?x={n}", b"body %d" % n) for n in range(4)
    ]
    assert rec.requests[0].headers == {
        "host": "t",
        "x-mixed-case": "Yes",
        "content-length": "6",
    }


async def test_repeated_header_fields_are_joined(net: Net) -> None:
    rec, conn = await net.recorded()
    await conn.send(
        b"GET /h HTTP/1.1\r\nHost: t\r\nX-Rep: a\r\nAccept: x/y\r\n"
        b"x-rep: b, c\r\nX-REP: d\r\n\r\n"
    )
    assert (await conn.answer()).status == 200
    (req,) = rec.requests
    assert req.headers["x-rep"] == "a, b, c, d"
    assert req.headers["accept"] == "x/y"
    assert req.method == "GET" and req.body == b""


async def test_chunked_body_with_extension_and_trailer(net: Net) -> None:
    rec, conn = await net.recorded()
    await conn.send(
        b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n"
        b"1\r\n \r\n"
        b"A\r\n0123456789\r\n"
        b"0\r\nX-Checksum: abc\r\n\r\n"
    )
    answer = await conn.answer()
    assert answer.status == 200
    assert answer.body == b"echo:hello 0123456789"
    (req,) = rec.requests
    assert req.body == b"hello 0123456789"
    # The connection is still usable: the framing ended where it should.
    await conn.send(_post("/next", b"x"))
    assert (await conn.answer()).body == b"echo:x"


async def test_trailer_fields_are_not_merged_into_the_header_section(
    net: Net,
) -> None:
    rec, conn = await net.recorded()
    await conn.send(
        b"POST /c HTTP/1.1\r\nHost: t\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-Checksum: abc\r\nX-A: 2\r\n\r\n"
    )
    assert (await conn.answer()).status == 200
    (req,) = rec.requests
    assert req.body == b"abc"
    assert req.headers["x-a"] == "1"
    assert "x-checksum" not in req.headers


async def test_curl_chunked_upload_and_keep_alive(net: Net, tmp_path: Path) -> None:
    rec = Recorder()
    _, port = await net.serve(rec)
    data = bytes(range(256)) * 300  # several chunks from curl
    (tmp_path / "body").write_bytes(data)
    url = f"http://127.0.0.1:{port}/up?a=1"
    code, out, err = await run_curl(
        "-v",
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Content-Type: application/x-test",
        "--data-binary",
        f"@{tmp_path / 'body'}",
        url,
        url,
    )
    assert code == 0, err
    assert out == (b"echo:" + data) * 2
    assert [(r.method, r.target, r.body) for r in rec.requests] == [
        ("POST", "/up?a=1", data)
    ] * 2
    assert rec.requests[0].headers["transfer-encoding"] == "chunked"
    assert rec.requests[0].headers["content-type"] == "application/x-test"
    assert err.count("Connected to") == 1, err
    assert "Re-using existing connection" in err, err


# -- Expect: 100-continue


async def test_expect_100_continue_raw(net: Net) -> None:
    rec, conn = await net.recorded()
    await conn.send(
        b"POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
        b"Content-Length: 5\r\n\r\n"
    )
    interim = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert rec.requests == []  # the handler waits for the body
    await conn.send(b"hello")
    answer = await conn.answer()
    assert (answer.status, answer.body) == (200, b"echo:hello")
    assert rec.requests[0].headers["expect"] == "100-continue"
    # Kept alive after the exchange.
    await conn.send(_post("/again", b"z"))
    assert (await conn.answer()).body == b"echo:z"


async def test_expect_100_continue_with_curl(net: Net) -> None:
    rec = Recorder()
    _, port = await net.serve(rec)
    code, out, err = await run_curl(
        "-v",
        "--expect100-timeout",
        "10",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        "abc",
        f"http://127.0.0.1:{port}/x",
    )
    assert code == 0, err
    assert out == b"echo:abc"
    assert "< HTTP/1.1 100 Continue" in err, err
    assert [r.body for r in rec.requests] == [b"abc"]


async def _refused(conn: Conn, rec: Recorder, status: int) -> None:
    """The answer is ``status`` with ``Connection: close``, the server closes,
    and the handler never ran."""
    answer = await conn.answer()
    assert answer.status == status
    assert answer.one("connection") == "close"
    await conn.closed_by_server()
    assert rec.requests == []


async def test_unknown_expectation_gets_417_and_close(net: Net) -> None:
    rec, conn = await net.recorded()
    await conn.send(
        b"POST /e HTTP/1.1\r\nHost: t\r\nExpect: something-else\r\n"
        b"Content-Length: 3\r\n\r\n"
    )
    await _refused(conn, rec, 417)


async def test_no_100_continue_before_a_413(net: Net) -> None:
    rec, conn = await net.recorded(max_body=10)
    await conn.send(
        b"POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
        b"Content-Length: 11\r\n\r\n"
    )
    answer = await conn.answer()  # the first thing sent is the refusal
    assert answer.status == 413
    await conn.closed_by_server()
    assert rec.requests == []


async def test_no_100_continue_for_http10(net: Net) -> None:
    _, conn = await net.recorded()
    await conn.send(_post("/e", b"abc", "Expect: 100-continue", version="1.0"))
    answer = await conn.answer()  # not an interim 100 (RFC 9110 §10.1.1)
    assert (answer.status, answer.body) == (200, b"echo:abc")


# -- pipelining


async def test_pipelined_requests_are_answered_in_order_one_at_a_time(
    net: Net,
) -> None:
    log: list[str] = []

    async def reply(req: HttpRequest) -> HttpReply:
        log.append(f"start {req.target}")
        if req.target == "/1":
            await asyncio.sleep(0.1)  # the first is the slowest
        log.append(f"end {req.target}")
        return HttpReply(200, req.target.encode())

    _, port = await net.serve(Recorder(reply))
    conn = await net.connect(port)
    await conn.send(_post("/1", b"a") + _get("/2") + _post("/3", b"ccc"))
    bodies = [(await conn.answer()).body for _ in range(3)]
    assert bodies == [b"/1", b"/2", b"/3"]
    assert log == ["start /1", "end /1", "start /2", "end /2", "start /3", "end /3"]
    await conn.still_open()


async def test_many_pipelined_requests_past_the_read_pause(net: Net) -> None:
    async def reply(req: HttpRequest) -> HttpReply:
        await asyncio.sleep(0)
        return HttpReply(200, req.body)

    rec = Recorder(reply)
    _, port = await net.serve(rec)
    conn = await net.connect(port)
    count = 60  # well past the 16 queued requests that pause reading
    await conn.send(b"".join(_post(f"/{n}", b"%d" % n) for n in range(count)))
    bodies = [(await conn.answer()).body for _ in range(count)]
    assert bodies == [b"%d" % n for n in range(count)]
    await conn.send(_post("/after", b"end"))  # reading resumed
    assert (await conn.answer()).body == b"end"


async def test_pipelined_good_request_then_garbage(net: Net) -> None:
    rec, conn = await net.recorded()
    await conn.send(_post("/ok", b"1") + b"NOT HTTP AT ALL\r\n\r\n")
    first = await conn.answer()
    second = await conn.answer()
    assert (first.status, first.body) == (200, b"echo:1")
    assert second.status == 400
    assert second.one("connection") == "close"
    await conn.closed_by_server()
    assert len(rec.requests) == 1


# -- connection management


async def test_http10_without_keep_alive_is_closed_after_the_answer(
    net: Net,
) -> None:
    _, conn = await net.recorded()
    await conn.send(_post("/old", b"ten", version="1.0"))
    answer = await conn.answer()
    assert (answer.status, answer.body) == (200, b"echo:ten")
    assert answer.all("connection") in ([], ["close"])
    await conn.closed_by_server()


async def test_http10_with_keep_alive_stays_open(net: Net) -> None:
    rec, conn = await net.recorded()
    for n in range(3):
        await conn.send(
            _post("/old", b"%d" % n, "Connection: keep-alive", version="1.0")
        )
        answer = await conn.answer()
        assert answer.body == b"echo:%d" % n
        assert answer.one("connection").lower() == "keep-alive"
    await conn.still_open()
    assert len(rec.requests) == 3


async def test_http11_connection_close_is_honoured(net: Net) -> None:
    _, conn = await net.recorded()
    await conn.send(_post("/bye", b"x", "Connection: close"))
    answer = await conn.answer()
    assert (answer.status, answer.body) == (200, b"echo:x")
    assert answer.one("connection") == "close"
    await conn.closed_by_server()


async def test_head_has_the_length_but_no_body(net: Net) -> None:
    async def reply(req: HttpRequest) -> HttpReply:
        return HttpReply(200, b"hello world" if req.method == "HEAD" else b"got")

    rec = Recorder(reply)
    _, port = await net.serve(rec)
    conn = await net.connect(port)
    await conn.send(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n")
    head = await conn.answer(head_only=True)
    assert head.status == 200
    assert head.one("content-length") == "11"
    # Had the body been written, it would precede the next status line.
    await conn.send(_get("/next"))
    nxt = await conn.answer()
    assert (nxt.status, nxt.body) == (200, b"got")
    assert [r.method for r in rec.requests] == ["HEAD", "GET"]


# -- limits and malformed requests


async def test_body_over_the_limit_by_content_length(net: Net) -> None:
    rec = Recorder()
    _, port = await net.serve(rec, max_body=100)
    ok = await net.connect(port)
    await ok.send(_post("/fits", b"x" * 100))
    assert (await ok.answer()).status == 200
    conn = await net.connect(port)
    # Only the head is sent: the refusal must not wait for the body.
    await conn.send(b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n")
    answer = await conn.answer()
    assert answer.status == 413
    assert answer.one("connection") == "close"
    await conn.closed_by_server()
    assert [r.target for r in rec.requests] == ["/fits"]


async def test_chunked_body_over_the_limit(net: Net) -> None:
    rec, conn = await net.recorded(max_body=100)
    await conn.send(
        b"POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"32\r\n" + b"a" * 50 + b"\r\n" + b"33\r\n" + b"b" * 51 + b"\r\n0\r\n\r\n"
    )
    await _refused(conn, rec, 413)


async def test_header_section_over_the_limit(net: Net) -> None:
    rec = Recorder()
    _, port = await net.serve(rec, max_header_bytes=1024)
    ok = await net.connect(port)
    await ok.send(_get("/small", "X-Pad: " + "p" * 500))
    assert (await ok.answer()).status == 200
    big = await net.connect(port)
    await big.send(_get("/big", *(f"X-Pad-{n}: {'p' * 100}" for n in range(20))))
    answer = await big.answer()
    assert answer.status == 431
    assert answer.one("connection") == "close"
    await big.closed_by_server()
    long_target = await net.connect(port)
    await long_target.send(_get("/" + "u" * 2000))
    assert (await long_target.answer()).status == 431
    await long_target.closed_by_server()
    assert [r.target for r in rec.requests] == ["/small"]


async def test_unterminated_header_line_over_the_limit(net: Net) -> None:
    _, conn = await net.recorded(max_header_bytes=1024)
    await conn.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 8192)
    try:
        answer = await asyncio.wait_for(conn.answer(), 1.0)
    except TimeoutError:
        pytest.fail("no 431 for 8 KiB of header over a 1 KiB limit")
    assert answer.status == 431


async def test_garbage_gets_400_and_close(net: Net) -> None:
    rec = Recorder()
    _, port = await net.serve(rec)
    conn = await net.connect(port)
    await conn.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
    answer = await conn.answer()
    assert answer.status == 400
    assert answer.one("connection") == "close"
    await conn.closed_by_server()
    smuggle = await net.connect(port)  # both framings: refused, not guessed
    await smuggle.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    assert (await smuggle.answer()).status == 400
    await smuggle.closed_by_server()
    assert rec.requests == []


async def test_upgrade_request_gets_400_and_close(net: Net) -> None:
    _, port = await net.serve(Recorder())
    conn = await net.connect(port)
    await conn.send(
        _get("/ws", "Connection: Upgrade", "Upgrade: websocket") + _get("/never-read")
    )
    wire = await conn.rest()  # the server closes
    last = wire.rfind(b"HTTP/1.1 ")
    status, _, headers = _parse_head(wire[last : wire.index(b"\r\n\r\n", last) + 4])
    assert status == 400
    assert ("connection", "close") in headers


async def test_upgrade_request_is_not_passed_to_the_handler(net: Net) -> None:
    rec, conn = await net.recorded()
    await conn.send(_get("/ws", "Connection: Upgrade", "Upgrade: websocket"))
    wire = await conn.rest()
    assert wire.startswith(b"HTTP/1.1 400 ")
    assert wire.count(b"HTTP/1.1 ") == 1  # one answer for one request
    assert rec.requests == []


# -- handler failures


async def test_handler_exception_gets_500_and_close(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    async def reply(req: HttpRequest) -> HttpReply:
        if req.target == "/boom":
            raise RuntimeError("handler bug")
        return HttpReply(200, b"fine")

    _, port = await net.serve(Recorder(reply))
    conn = await net.connect(port)
    with caplog.at_level(logging.ERROR):
        await conn.send(_post("/boom", b"x") + _get("/queued"))
        answer = await conn.answer()
        assert answer.status == 500
        assert answer.one("connection") == "close"
        assert b"handler bug" not in answer.body  # no internals leak
        await conn.closed_by_server()  # the queued request is not answered
    assert any(
        r.levelno >= logging.ERROR and r.exc_info and "/boom" in r.getMessage()
        for r in caplog.records
    )
    for _ in range(2):  # the server still serves new connections
        other = await net.connect(port)
        await other.send(_get("/ok"))
        assert (await other.answer()).body == b"fine"


async def test_line_break_in_a_reply_header_gets_500_not_a_split_answer(
    net: Net,
) -> None:
    async def reply(req: HttpRequest) -> HttpReply:
        return HttpReply(200, b"body", (("X-A", "1\r\nX-Injected: 1"),))

    _, port = await net.serve(Recorder(reply))
    conn = await net.connect(port)
    await conn.send(_get("/x"))
    wire = await conn.rest()
    assert wire.startswith(b"HTTP/1.1 500 ")
    assert b"X-Injected" not in wire
    assert wire.count(b"HTTP/1.1 ") == 1
    head, _, _ = wire.partition(b"\r\n\r\n")
    _, _, headers = _parse_head(head + b"\r\n\r\n")
    assert ("connection", "close") in headers


# -- idle timeout


async def test_idle_kept_alive_connection_is_closed(net: Net) -> None:
    rec = Recorder()
    _, port = await net.serve(rec, idle_seconds=0.2)
    conn = await net.connect(port)
    for _ in range(2):  # kept alive between requests...
        await conn.send(_get("/x"))
        assert (await conn.answer()).status == 200
    loop = asyncio.get_running_loop()
    start = loop.time()
    await conn.closed_by_server(timeout=3)  # ...and closed once idle
    assert loop.time() - start >= 0.1
    fresh = await net.connect(port)  # never sends anything
    await fresh.closed_by_server(timeout=3)


async def test_half_sent_request_is_closed_after_the_idle_time(net: Net) -> None:
    rec = Recorder()
    _, port = await net.serve(rec, idle_seconds=0.2)
    head_only = await net.connect(port)
    await head_only.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Le")
    body_part = await net.connect(port)
    await body_part.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab")
    await head_only.closed_by_server(timeout=3)
    await body_part.closed_by_server(timeout=3)
    assert rec.requests == []


async def test_connection_with_a_running_handler_is_not_idle(net: Net) -> None:
    go = asyncio.Event()

    async def reply(req: HttpRequest) -> HttpReply:
        if req.target == "/slow":
            await go.wait()
        return HttpReply(200, req.target.encode())

    _, port = await net.serve(Recorder(reply), idle_seconds=0.2)
    conn = await net.connect(port)
    await conn.send(_get("/slow"))
    await conn.still_open(wait=0.7)  # more than three idle periods
    go.set()
    answer = await conn.answer()
    assert (answer.status, answer.body) == (200, b"/slow")
    await conn.send(_get("/then"))  # still kept alive afterwards
    assert (await conn.answer()).body == b"/then"


# -- clients that leave, shutdown


async def test_client_leaving_does_not_cancel_its_handler(net: Net) -> None:
    go = asyncio.Event()
    outcome: list[str] = []

    async def reply(req: HttpRequest) -> HttpReply:
        try:
            await go.wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        outcome.append("finished")
        return HttpReply(200, b"late")

    rec = Recorder(reply)
    _, port = await net.serve(rec)
    conn = await net.connect(port)
    await conn.send(_post("/work", b"w"))
    while not rec.requests:
        await asyncio.sleep(0.01)
    conn.writer.close()
    await conn.writer.wait_closed()
    await asyncio.sleep(0.3)  # the server sees the connection go
    go.set()
    for _ in range(100):
        if outcome:
            break
        await asyncio.sleep(0.01)
    assert outcome == ["finished"]
    other = await net.connect(port)  # and the server is fine
    await other.send(_get("/x"))
    assert (await other.answer()).body == b"late"


async def test_close_finishes_requests_under_way(net: Net) -> None:
    go = asyncio.Event()

    async def reply(req: HttpRequest) -> HttpReply:
        if req.target == "/slow":
            await go.wait()
        return HttpReply(200, req.target.encode())

    rec = Recorder(reply)
    server, port = await net.serve(rec)
    idle = await net.connect(port)
    await idle.send(_get("/quick"))
    assert (await idle.answer()).body == b"/quick"
    busy = await net.connect(port)
    await busy.send(_get("/slow"))
    while len(rec.requests) < 2:
        await asyncio.sleep(0.01)
    closing = asyncio.create_task(server.close(grace_seconds=5))
    await idle.closed_by_server(timeout=3)  # idle connections go at once
    with pytest.raises(OSError):  # no new connections
        await asyncio.open_connection("127.0.0.1", port)
    await busy.still_open(wait=0.1)
    assert not closing.done()  # waits for the request under way
    go.set()
    answer = await busy.answer()
    assert (answer.status, answer.body) == (200, b"/slow")
    await busy.closed_by_server(timeout=3)
    await asyncio.wait_for(closing, TIMEOUT)


async def test_close_aborts_requests_after_the_grace_period(net: Net) -> None:
    go = asyncio.Event()

    async def reply(req: HttpRequest) -> HttpReply:
        await go.wait()
        return HttpReply(200, b"too late")

    rec = Recorder(reply)
    server, port = await net.serve(rec)
    busy = await net.connect(port)
    await busy.send(_get("/stuck"))
    while not rec.requests:
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.wait_for(server.close(grace_seconds=0.2), TIMEOUT)
    assert loop.time() - start >= 0.15  # it did wait for the grace period
    await busy.closed_by_server(timeout=3)  # closed without an answer
    go.set()


# -- TLS


async def test_tls_with_and_without_a_client_certificate(
    net: Net, tmp_path: Path
) -> None:
    (tmp_path / "server").mkdir()
    tls = loopback_tls(tmp_path / "server")
    client = client_identity(tmp_path, "test-client", client_auth_usage=True)
    cert_file, key_file, client_der = client.cert_file, client.key_file, client.der
    server_ctx = tls.server
    server_ctx.verify_mode = ssl.CERT_OPTIONAL
    server_ctx.load_verify_locations(cafile=str(cert_file))
    rec = Recorder()
    _, port = await net.serve(rec, ssl_context=server_ctx)

    server_cert_file = tmp_path / "server-cert.pem"
    server_cert_file.write_bytes(tls.cert.public_bytes(serialization.Encoding.PEM))
    with_cert = ssl.create_default_context(cafile=str(server_cert_file))
    with_cert.load_cert_chain(cert_file, key_file)
    conn = await net.connect(port, tls=with_cert)
    for n in range(2):
        await conn.send(_post("/tls", b"%d" % n))
        assert (await conn.answer()).body == b"echo:%d" % n

    without_cert = ssl.create_default_context(cafile=str(server_cert_file))
    anonymous = await net.connect(port, tls=without_cert)
    await anonymous.send(_post("/anon", b"a"))
    assert (await anonymous.answer()).body == b"echo:a"

    assert [(r.target, r.tls, r.peer_cert_der) for r in rec.requests] == [
        ("/tls", True, client_der),
        ("/tls", True, client_der),
        ("/anon", True, None),
    ]

    code, out, err = await run_curl(
        "--cacert",
        str(server_cert_file),
        "--cert",
        str(cert_file),
        "--key",
        str(key_file),
        "--data-binary",
        "curl",
        f"https://127.0.0.1:{port}/curl",
    )
    assert code == 0, err
    assert out == b"echo:curl"
    last = rec.requests[-1]
    assert (last.target, last.tls, last.peer_cert_der) == ("/curl", True, client_der)


# -- requests cut anywhere


@given(
    body=st.binary(max_size=200),
    chunked=st.booleans(),
    chunk=st.integers(min_value=1, max_value=50),
    second=st.booleans(),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=25),
)
@settings(max_examples=100, deadline=None)
def test_requests_split_anywhere_are_read_the_same(
    body: bytes, chunked: bool, chunk: int, second: bool, cuts: list[int]
) -> None:
    """However the bytes of one request (and a pipelined second) are cut into
    writes, the handler sees the same requests and the answers are the same."""
    if chunked:
        pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
        wire = (
            b"PUT /p?k=v HTTP/1.1\r\nHost: t\r\nX-A: 1\r\nx-a: 2\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x;e=1\r\n%s\r\n" % (len(p), p) for p in pieces)
            + b"0\r\n\r\n"
        )
    else:
        wire = _post("/p?k=v", body, "X-A: 1", "x-a: 2").replace(b"POST", b"PUT")
    if second:
        wire += _get("/second?z=%C3%A9", "Accept: */*")

    async def run() -> tuple[list[HttpRequest], list[Answer]]:
        rec = Recorder()
        server = Http11Server(rec, ServerLimits(max_body=1000, idle_seconds=10))
        await server.listen("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports[0])
        try:
            rest = wire
            for cut in cuts:
                if not rest:
                    break
                writer.write(rest[:cut])
                await writer.drain()
                rest = rest[cut:]
                await asyncio.sleep(0)  # let the server read this piece
                await asyncio.sleep(0)
            writer.write(rest)
            await writer.drain()
            answers = [await read_answer(reader) for _ in range(2 if second else 1)]
        finally:
            writer.close()
            await server.close(grace_seconds=1)
        return rec.requests, answers

    requests, answers = asyncio.run(run())
    first = requests[0]
    assert (first.method, first.target, first.body) == ("PUT", "/p?k=v", body)
    assert first.headers["x-a"] == "1, 2"
    assert ("transfer-encoding" in first.headers) == chunked
    assert (answers[0].status, answers[0].body) == (200, b"echo:" + body)
    assert answers[0].one("x-target") == "/p?k=v"
    if second:
        assert len(requests) == 2
        assert (requests[1].method, requests[1].target) == ("GET", "/second?z=%C3%A9")
        assert requests[1].headers == {"host": "t", "accept": "*/*"}
        assert requests[1].body == b""
        assert (answers[1].status, answers[1].body) == (200, b"echo:")
    else:
        assert len(requests) == 1


async def test_a_client_that_stops_reading_is_dropped_after_the_idle_time(
    net: Net,
) -> None:
    body = b"z" * (32 << 20)  # far more than the socket buffers hold

    async def large(request: HttpRequest) -> HttpReply:
        return HttpReply(200, body)

    _, port = await net.serve(large, idle_seconds=0.3)
    conn = await net.connect(port)
    await conn.send(_get("/large"))
    await asyncio.sleep(1.0)  # reads nothing while the server waits to write
    received = await conn.rest()  # ends: the server gave the connection up
    assert 0 < len(received) < len(body)
