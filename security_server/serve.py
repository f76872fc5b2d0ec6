"""``jplink ss serve``: the proxies, OCSP for peers and the OCSP refresher.

One process runs, sharing one set of :class:`~.app.ExchangeResources`
(database, token login, signer, message-log writer, certificate status):

- the client proxy (``[client_proxy] host:http_port``, information systems);
- the server proxy (``[server_proxy] host:port``, mutual TLS, PROTOCOLS.md
  §5.1) with the authentication certificate that is valid when the process
  starts (restart after replacing it);
- the OCSP-for-peers listener (``[ocsp_responder] host:port``, PROTOCOLS.md
  §5.2);
- the OCSP refresher, which keeps the responses of this server's own
  certificates fresh (PROTOCOLS.md §8) and makes the proxies re-read them.

At start the refresher runs once before the authentication material is
checked, so a server whose cache is empty or stale can start when the CA is
reachable. The event loop is uvloop's.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
from collections.abc import AsyncIterator, Callable

import uvloop
from aiohttp import web

from jplink.errors import JPLinkError
from jplink.security.tls import server_ssl_context

from .app import (
    ExchangeResources,
    make_client_proxy_app,
    make_server_proxy_app,
    open_resources,
)
from .config import SecurityServerConfig
from .ocsp_peers_app import make_ocsp_peers_app
from .ocsp_refresher import OcspRefresher

__all__ = ["run_server", "running", "serve"]

_log = logging.getLogger(__name__)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _server_tls(resources: ExchangeResources, now: dt.datetime) -> ssl.SSLContext:
    auth = await resources.certstatus.auth_material(now=now)
    shared = resources.conf.current(now=now)
    return server_ssl_context(
        (auth.cert, *auth.chain),
        auth.key,
        client_ca_certs=(*shared.trusted_ca_certs(), *shared.intermediate_ca_certs()),
    )


@contextlib.asynccontextmanager
async def running(
    config: SecurityServerConfig,
    *,
    pin: str | None = None,
    clock: Callable[[], dt.datetime] = _utcnow,
    refresh_ocsp: bool = True,
) -> AsyncIterator[ExchangeResources]:
    """Serve until the block exits; everything is closed on the way out.

    Args:
        config: the instance configuration.
        pin: the token PIN; else ``[exchange] pin_file``.
        clock: the proxies' current time (tests pass a shifted clock).
        refresh_ocsp: run the OCSP refresher (once at start, then in the
            background); tests that manage the OCSP cache turn it off.

    Yields:
        The shared resources, while all listeners accept connections.

    Raises:
        ConfigurationError, NotFound, Unauthenticated, StorageError: from
            :func:`~.app.open_resources`.
        JPLinkError: no usable authentication certificate (no registered,
            active certificate or no fresh OCSP response) at start.
        OSError: a listening port is taken.
    """
    async with open_resources(config, pin=pin, clock=clock) as resources:
        refresher = OcspRefresher(
            resources.db,
            config,
            resources.conf.loaded,
            on_change=resources.certstatus.invalidate,
        )
        if refresh_ocsp:
            try:
                await refresher.refresh_now(now=clock())
            except JPLinkError as exc:  # the check below says whether it matters
                _log.warning("OCSP refresh at start failed: %s", exc.message)
        tls = await _server_tls(resources, clock())
        sites = (
            (make_client_proxy_app(config, resources=resources), config.client_proxy),
            (make_server_proxy_app(config, resources=resources), config.server_proxy),
            (make_ocsp_peers_app(config), config.ocsp_responder),
        )
        runners: list[web.AppRunner] = []
        task: asyncio.Task[None] | None = None
        try:
            for app, settings in sites:
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                runners.append(runner)
                port = getattr(settings, "http_port", getattr(settings, "port", 0))
                context = tls if settings is config.server_proxy else None
                site = web.TCPSite(runner, settings.host, port, ssl_context=context)
                await site.start()
                _log.info("listening on %s:%s", settings.host, port)
            if refresh_ocsp:
                task = asyncio.create_task(refresher.run(), name="ocsp-refresher")
            yield resources
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for runner in reversed(runners):
                await runner.cleanup()


async def serve(
    config: SecurityServerConfig,
    *,
    pin: str | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run everything until ``stop`` is set (or forever).

    Args:
        config: the instance configuration.
        pin: the token PIN; else ``[exchange] pin_file``.
        stop: set it to shut down cleanly.

    Raises:
        JPLinkError, OSError: see :func:`running`.
    """
    async with running(config, pin=pin):
        await (stop or asyncio.Event()).wait()


def run_server(config: SecurityServerConfig, *, pin: str | None = None) -> None:
    """Run :func:`serve` on a uvloop event loop until interrupted."""
    uvloop.run(serve(config, pin=pin))
