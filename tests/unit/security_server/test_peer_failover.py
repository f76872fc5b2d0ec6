"""Several servers offer the service: the fastest is used, the others are
fallbacks while nothing was sent (PROTOCOLS.md §5.1), with real TLS servers."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from jplink.errors import CertificateValidationError, TransportError
from jplink.globalconf.model import SecurityServer
from jplink.identifiers import SecurityServerId
from security_server.peer_client import PeerTransport
from tests.support.tls import LoopbackTls, loopback_tls


class _Checks:
    """The certificate-status port: slow or refusing for chosen servers."""

    def __init__(self) -> None:
        self.slow: set[str] = set()
        self.refuse: set[str] = set()

    async def verify_peer(
        self, cert_der: bytes, *, now: dt.datetime, expected_server: Any = None
    ) -> object:
        code = expected_server.server_code
        if code in self.slow:
            await asyncio.sleep(0.3)
        if code in self.refuse:
            raise CertificateValidationError("no", code="SslAuthenticationFailed")
        return object()


class _Peer:
    """A TLS HTTP server answering with its own name (or hanging up)."""

    def __init__(self, name: str, tls: LoopbackTls) -> None:
        self.name = name
        self.tls = tls
        self.requests = 0
        self.connections = 0
        self.hang_up = False
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, ssl=self.tls.server
        )
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r")[0])
                await r.readexactly(length)
                self.requests += 1
                if self.hang_up:
                    return
                body = self.name.encode()
                w.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
                await w.drain()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            w.close()

    def stop(self) -> None:
        assert self.server is not None
        self.server.close()

    def entry(self) -> SecurityServer:
        sid = SecurityServerId("JP-TEST", "COM", "1", self.name)
        return SecurityServer(sid, f"127.0.0.1:{self.port}")


@pytest.fixture
async def world(
    tmp_path: Path,
) -> AsyncIterator[tuple[PeerTransport, _Checks, list[_Peer]]]:
    tls = loopback_tls(tmp_path)
    checks = _Checks()
    transport = PeerTransport(
        checks,  # type: ignore[arg-type]
        ssl_context=lambda *a, **k: tls.client,
        clock=lambda: dt.datetime.now(dt.UTC),
        connect_timeout=2.0,
        read_timeout=5.0,
    )
    transport.use_identity([tls.cert], object(), [])  # type: ignore[arg-type]
    peers = [_Peer(name, tls) for name in ("ss1", "ss2")]
    for peer in peers:
        await peer.start()
    yield transport, checks, peers
    await transport.close()
    for peer in peers:
        peer.stop()


async def _send(transport: PeerTransport, peers: list[_Peer]) -> str:
    answer = await transport.send([p.entry() for p in peers], body=b"m", headers={})
    assert answer.body.decode() == answer.server.server_code
    return answer.server.server_code


async def test_the_fastest_server_is_used(world: Any) -> None:
    transport, checks, peers = world
    checks.slow.add("ss1")  # ss1 is listed first but answers its probe late
    assert await _send(transport, peers) == "ss2"
    assert [await _send(transport, peers) for _ in range(3)] == ["ss2"] * 3
    assert peers[0].requests == 0
    # The probe's verified connection carried the requests.
    assert peers[1].connections == 1


async def test_a_server_that_cannot_be_reached_is_skipped(world: Any) -> None:
    transport, checks, peers = world
    checks.slow.add("ss2")
    assert await _send(transport, peers) == "ss1"  # ranked first
    peers[0].stop()  # ... and then gone: the ranking still lists it first
    await transport.close()  # (its kept-alive connection goes too)
    assert await _send(transport, peers) == "ss2"
    assert peers[0].requests == 1


async def test_nothing_is_sent_twice(world: Any) -> None:
    transport, checks, peers = world
    checks.slow.add("ss2")
    peers[0].hang_up = True  # reads the request, then closes without answering
    with pytest.raises(TransportError) as caught:
        await _send(transport, peers)
    assert caught.value.request_sent
    assert (peers[0].requests, peers[1].requests) == (1, 0)


async def test_all_unreachable_or_refused(world: Any) -> None:
    transport, checks, peers = world
    for peer in peers:
        peer.stop()
    with pytest.raises(TransportError) as caught:
        await _send(transport, peers)
    assert caught.value.code == "NetworkError" and not caught.value.request_sent
    for peer in peers:
        await peer.start()  # same ports again
    checks.refuse.update({"ss1", "ss2"})
    with pytest.raises(CertificateValidationError):
        await _send(transport, peers)
    assert peers[0].requests == peers[1].requests == 0
