"""``jplink ss serve``: the client proxy and the server proxy in one process.

Both proxies share one set of :class:`~.app.ExchangeResources` (database,
token login, signer, message-log writer, certificate status). The server
proxy listens with mutual TLS (PROTOCOLS.md §5.1) using the authentication
certificate that is valid when the process starts; restart after replacing
it. The event loop is uvloop's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import uvloop
from aiohttp import web

from jplink.security.tls import server_ssl_context

from .app import make_client_proxy_app, make_server_proxy_app, open_resources
from .config import SecurityServerConfig

__all__ = ["run_server", "serve"]

_log = logging.getLogger(__name__)


async def serve(
    config: SecurityServerConfig,
    *,
    pin: str | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run both proxies until ``stop`` is set (or forever).

    Args:
        config: the instance configuration.
        pin: the token PIN; else ``[exchange] pin_file``.
        stop: set it to shut down cleanly.

    Raises:
        ConfigurationError, NotFound, Unauthenticated, StorageError: from
            :func:`~.app.open_resources`.
        JPLinkError: no usable authentication certificate (no registered,
            active certificate or no fresh OCSP response) at start.
    """
    async with open_resources(config, pin=pin) as resources:
        now = dt.datetime.now(dt.UTC)
        auth = await resources.certstatus.auth_material(now=now)
        shared = resources.conf.current(now=now)
        tls = server_ssl_context(
            (auth.cert, *auth.chain),
            auth.key,
            client_ca_certs=(
                *shared.trusted_ca_certs(),
                *shared.intermediate_ca_certs(),
            ),
        )
        runners = []
        try:
            sites = (
                (
                    make_client_proxy_app(config, resources=resources),
                    config.client_proxy.host,
                    config.client_proxy.http_port,
                    None,
                ),
                (
                    make_server_proxy_app(config, resources=resources),
                    config.server_proxy.host,
                    config.server_proxy.port,
                    tls,
                ),
            )
            for app, host, port, ssl_context in sites:
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                runners.append(runner)
                await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
                _log.info("listening on %s:%s", host, port)
            await (stop or asyncio.Event()).wait()
        finally:
            for runner in reversed(runners):
                await runner.cleanup()


def run_server(config: SecurityServerConfig, *, pin: str | None = None) -> None:
    """Run :func:`serve` on a uvloop event loop until interrupted."""
    uvloop.run(serve(config, pin=pin))
