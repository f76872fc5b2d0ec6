"""The client proxy over HTTPS (8443) and the per-client IS connection type.

Real TLS: the client proxy app of server A is served on a TCPSite with the
context of :mod:`security_server.client_tls`, and information systems are
Python ``ssl`` clients (and ``curl``) with or without their own certificate.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from jplink.identifiers import ClientId
from security_server import clients
from security_server.client_tls import ClientProxyTls, open_client_tls
from security_server.exchange_is_auth import (
    ConnectionType,
    add_is_certificate,
    set_connection_type,
)
from security_server.proxy_listener import client_proxy_server
from tests.conftest import require_tool
from tests.support.tls import ClientIdentity, client_identity

from .pair import Pair, fault_code, open_pair, real_now, trades_request

SSL_FAULT = "Server.ClientProxy.SslAuthenticationFailed"
XML = {"Content-Type": "text/xml; charset=UTF-8"}


IsCert = ClientIdentity


def make_is_cert(directory: Path, name: str) -> IsCert:
    return client_identity(directory, name)


@dataclass
class World:
    pair: Pair
    tls: ClientProxyTls
    https_url: str
    server_cert: Path
    registered: IsCert
    stranger: IsCert
    tmp: Path

    def context(self, cert: IsCert | None) -> ssl.SSLContext:
        """An IS's client context: trusts the internal cert, maybe presents one."""
        ctx = ssl.create_default_context(cafile=str(self.server_cert))
        if cert is not None:
            ctx.load_cert_chain(cert.cert_file, cert.key_file)
        return ctx

    async def post_https(self, cert: IsCert | None) -> tuple[int, bytes]:
        body = trades_request(self.pair.a.subsystem, self.pair.b.subsystem)
        async with self.pair.http.post(
            self.https_url, data=body, headers=XML, ssl=self.context(cert)
        ) as resp:
            return resp.status, await resp.read()

    async def post_http(self) -> tuple[int, bytes]:
        body = trades_request(self.pair.a.subsystem, self.pair.b.subsystem)
        status, _, data = await self.pair.post(body)
        return status, data

    async def set_type(self, ctype: ConnectionType) -> None:
        a = self.pair.a
        await set_connection_type(a.db(), "test", a.subsystem, ctype, now=real_now())


@pytest.fixture
async def world(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[World]:
    async with open_pair(tmp_path, aiohttp_server) as pair:
        a = pair.a
        tls = await open_client_tls(a.db(), a.config.home, now=real_now())
        registered = make_is_cert(tmp_path, "is-registered")
        stranger = make_is_cert(tmp_path, "is-stranger")
        await add_is_certificate(
            a.db(),
            "test",
            a.subsystem,
            registered.cert_file.read_bytes(),
            now=real_now(),
        )
        await tls.refresh()
        server = client_proxy_server(a.config, a.res)
        try:
            await server.listen("127.0.0.1", 0, ssl_context=tls.context)
            port = server.ports[-1]
            yield World(
                pair,
                tls,
                f"https://127.0.0.1:{port}/",
                a.config.home / "internal-tls.crt",
                registered,
                stranger,
                tmp_path,
            )
        finally:
            await server.close()
            await tls.close()


def _ok(status: int, body: bytes) -> None:
    assert status == 200, body[:400]
    assert b"getTradesResponse" in body
    assert b"requestHash" in body


def _refused(status: int, body: bytes) -> None:
    assert status == 500, body[:400]
    assert fault_code(body) == SSL_FAULT


async def test_http_type_accepts_plain_and_tls(world: World) -> None:
    # No setting stored: HTTP, as X-Road's NOSSL default.
    _ok(*await world.post_http())
    _ok(*await world.post_https(None))
    _ok(*await world.post_https(world.registered))


async def test_https_no_auth_requires_tls(world: World) -> None:
    await world.set_type(ConnectionType.HTTPS_NO_AUTH)
    _refused(*await world.post_http())
    _ok(*await world.post_https(None))


async def test_https_requires_a_registered_certificate(world: World) -> None:
    await world.set_type(ConnectionType.HTTPS)
    _refused(*await world.post_http())
    _refused(*await world.post_https(None))
    _ok(*await world.post_https(world.registered))


async def test_certificate_of_another_client_is_refused(world: World) -> None:
    a = world.pair.a
    other = ClientId(a.owner.instance, a.owner.member_class, a.owner.member_code, "b")
    await clients.add_client(a.db(), "test", other, now=real_now())
    await add_is_certificate(
        a.db(), "test", other, world.stranger.cert_file.read_bytes(), now=real_now()
    )
    await world.tls.refresh()
    await world.set_type(ConnectionType.HTTPS)
    # The handshake accepts it (registered, for subsystem "b"), the client
    # proxy refuses it for subsystem "client".
    _refused(*await world.post_https(world.stranger))


async def test_unregistered_certificate_fails_the_handshake(world: World) -> None:
    await world.set_type(ConnectionType.HTTPS)
    with pytest.raises(aiohttp.ClientError):
        await world.post_https(world.stranger)
    # Nothing of the refused connection reached the provider.
    assert world.pair.stub.received == []


async def test_the_served_certificate_is_the_internal_one(world: World) -> None:
    pem = world.server_cert.read_bytes()
    served = await asyncio.to_thread(
        ssl.get_server_certificate,
        ("127.0.0.1", int(world.https_url.rsplit(":", 1)[1].strip("/"))),
    )
    assert x509.load_pem_x509_certificate(served.encode()) == (
        x509.load_pem_x509_certificate(pem)
    )
    mode = (world.pair.a.config.home / "internal-tls.key").stat().st_mode & 0o777
    assert mode == 0o600


async def test_curl_with_a_client_certificate(world: World) -> None:
    curl = require_tool("curl")
    await world.set_type(ConnectionType.HTTPS)
    request = world.tmp / "request.xml"
    request.write_bytes(trades_request(world.pair.a.subsystem, world.pair.b.subsystem))

    def run(*extra: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [
                curl,
                "-sS",
                "--cacert",
                str(world.server_cert),
                "-H",
                "Content-Type: text/xml; charset=UTF-8",
                "--data-binary",
                f"@{request}",
                *extra,
                world.https_url,
            ],
            capture_output=True,
            timeout=60,
        )

    good = await asyncio.to_thread(
        run, "--cert", str(world.registered.cert_file),
        "--key", str(world.registered.key_file),
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert b"getTradesResponse" in good.stdout
    without = await asyncio.to_thread(run)
    assert without.returncode == 0, without.stderr
    assert fault_code(without.stdout) == SSL_FAULT
