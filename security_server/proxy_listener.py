"""The proxies' listeners: client proxy (8080/8443) and server proxy (5500).

Both run on :class:`jplink.http11_server.Http11Server` (a third of aiohttp's
CPU per request, which every exchange pays twice). The handlers are thin:
hand the body, the header fields and the TLS peer certificate to the
exchange core and turn its :class:`~.exchange.ProxyReply` into an answer.

Routes, as X-Road's proxies:

- ``POST /``: the exchange (SOAP from an information system; a transport
  message from a peer);
- ``GET /asic`` on the client proxy: the signed-document download
  (:mod:`.evidence_http`);
- any other method on ``/``: an X-Road SOAP fault ``InvalidHttpMethod``;
  any other path: 404.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

from jplink.errors import MalformedMessage
from jplink.http11_server import Http11Server, HttpReply, HttpRequest, ServerLimits
from jplink.storage import Database

from .client_proxy import ClientProxy
from .config import SecurityServerConfig
from .evidence import decryptor_for
from .evidence_http import ASIC_PATH, asic_download, deferred_decryptor
from .exchange import FaultPrefix, ProxyReply, fault_reply
from .exchange_is_auth import IsChannel
from .server_proxy import ServerProxy

__all__ = [
    "MAX_REQUEST_BYTES",
    "ProxyListeners",
    "ProxyResources",
    "client_proxy_server",
    "open_proxy_listeners",
    "server_proxy_server",
]

#: Largest request accepted from an information system or a peer.
MAX_REQUEST_BYTES = 50 * 1024 * 1024

_NOT_FOUND = HttpReply(404, b"Not Found", (("Content-Type", "text/plain"),))


def _reply(reply: ProxyReply) -> HttpReply:
    return HttpReply(
        reply.status,
        reply.body,
        (("Content-Type", reply.content_type), *reply.headers.items()),
    )


def _split(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path, query


def _wrong_method(request: HttpRequest, prefix: FaultPrefix) -> HttpReply:
    err = MalformedMessage(
        f"Method {request.method} is not allowed; use POST", code="InvalidHttpMethod"
    )
    return _reply(fault_reply(err, prefix))


class ProxyResources(Protocol):
    """What the handlers use of :class:`~.app.ExchangeResources`."""

    @property
    def db(self) -> Database: ...
    @property
    def client_proxy(self) -> ClientProxy: ...
    @property
    def server_proxy(self) -> ServerProxy: ...


def client_proxy_server(
    config: SecurityServerConfig | None, res: ProxyResources
) -> Http11Server:
    """The client proxy's server (information systems).

    Args:
        config: its ``[message_log]`` keystore decrypts bodies for ``/asic``
            (None: no decryption).
        res: the shared resources (``client_proxy`` and ``db`` are used).
    """

    async def handle(request: HttpRequest) -> HttpReply:
        path, query = _split(request.target)
        if path == "/" and request.method == "POST":
            reply = await res.client_proxy.handle(
                request.body,
                request.headers.get("content-type", ""),
                soap_action=request.headers.get("soapaction"),
                channel=IsChannel(tls=request.tls, cert_der=request.peer_cert_der),
            )
            return _reply(reply)
        if path == ASIC_PATH and request.method in ("GET", "HEAD"):
            decrypt = None
            if config is not None:
                conf = config
                decrypt = deferred_decryptor(lambda: decryptor_for(conf))
            params: Mapping[str, str] = dict(parse_qsl(query, keep_blank_values=True))
            return await asic_download(params, res.db, decrypt)
        if path == "/":
            return _wrong_method(request, FaultPrefix.CLIENT)
        return _NOT_FOUND

    return Http11Server(handle, ServerLimits(max_body=MAX_REQUEST_BYTES))


def server_proxy_server(res: ProxyResources) -> Http11Server:
    """The server proxy's server (peer security servers over mutual TLS).

    Args:
        res: the shared resources (``server_proxy`` is used).
    """

    async def handle(request: HttpRequest) -> HttpReply:
        path, _ = _split(request.target)
        if path == "/" and request.method == "POST":
            reply = await res.server_proxy.handle(
                request.body, request.headers, peer_cert_der=request.peer_cert_der
            )
            return _reply(reply)
        if path == "/":
            return _wrong_method(request, FaultPrefix.SERVER_PROXY)
        return _NOT_FOUND

    return Http11Server(handle, ServerLimits(max_body=MAX_REQUEST_BYTES))


@dataclass(frozen=True, slots=True)
class ProxyListeners:
    """The running client- and server-proxy servers."""

    client: Http11Server
    server: Http11Server


@contextlib.asynccontextmanager
async def open_proxy_listeners(
    config: SecurityServerConfig,
    resources: ProxyResources,
    *,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
    reuse_port: bool,
) -> AsyncIterator[ProxyListeners]:
    """Listen on the client proxy's HTTP and HTTPS ports and the server proxy's.

    Args:
        config: the instance configuration (hosts and ports).
        resources: the shared :class:`~.app.ExchangeResources`.
        server_tls: the server proxy's mutual TLS (PROTOCOLS.md §5.1).
        client_tls: the client proxy's HTTPS (information systems' TLS).
        reuse_port: share the ports with worker processes (``SO_REUSEPORT``).

    Raises:
        OSError: a port is taken.
    """
    client = client_proxy_server(config, resources)
    server = server_proxy_server(resources)
    try:
        cp = config.client_proxy
        await client.listen(cp.host, cp.http_port, reuse_port=reuse_port)
        await client.listen(
            cp.host, cp.https_port, ssl_context=client_tls, reuse_port=reuse_port
        )
        sp = config.server_proxy
        await server.listen(
            sp.host, sp.port, ssl_context=server_tls, reuse_port=reuse_port
        )
        yield ProxyListeners(client, server)
    finally:
        await server.close()
        await client.close()
