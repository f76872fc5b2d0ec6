"""``jplink ss serve``: the proxies, OCSP for peers and the OCSP refresher.

One process runs, sharing one set of :class:`~.app.ExchangeResources`
(database, token login, signer, message-log writer, certificate status):

- the client proxy (``[client_proxy] host:http_port``, and ``https_port``
  with the internal TLS certificate, :mod:`.client_tls`), information systems;
- the server proxy (``[server_proxy] host:port``, mutual TLS, PROTOCOLS.md
  §5.1) with the authentication certificate that is valid when the process
  starts (restart after replacing it);
- the OCSP-for-peers listener (``[ocsp_responder] host:port``, PROTOCOLS.md
  §5.2);
- the OCSP refresher, which keeps the responses of this server's own
  certificates fresh (PROTOCOLS.md §8) and makes the proxies re-read them;
- the message-log time-stamper (in :func:`~.app.open_resources`) and the
  archiver (:mod:`.archiver`).

With ``[exchange] workers = N`` (N > 1) :func:`running` also starts N - 1
proxy worker processes (:mod:`.workers`) sharing the client- and
server-proxy ports; everything else above stays in this process.

At start the refresher runs once before the authentication material is
checked, so a server whose cache is empty or stale can start when the CA is
reachable. The event loop is uvloop's.

:func:`running` is that exchange alone (tests use it). :func:`serve` (``jplink
ss serve``) runs the admin REST API (``[admin] host:port``) at once, even on
a server that is not initialised yet (onboarding happens through it), and a
supervisor that starts the exchange with :func:`running` once it can: the
token is logged in (through the admin API, the PIN then living only in this
process's memory as in X-Road, or unattended from ``[exchange] pin_file``),
the global configuration lists an active authentication certificate of this
server, and that certificate has a fresh OCSP response. It checks every
``[admin] exchange_check_seconds`` and at once when the admin API changes
something relevant; it logs why the exchange is not running and the admin
API's ``GET /api/v1/status`` shows it. Logging out stops the exchange. The
global configuration is downloaded every ``[globalconf]
refresh_interval_seconds`` once the server is initialised.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable

import uvloop
from aiohttp import web

from jplink.errors import JPLinkError
from jplink.serving import stop_on_signals, tune_gc
from jplink.tasks import cancel_and_wait

from .admin import ServerRuntime, make_admin_app
from .admin.supervisor import Supervisor, download_globalconf_periodically
from .app import (
    ExchangeResources,
    open_resources,
    read_pin_file,
    resolve_pin,
    server_tls_context,
)
from .archiver import run_archiver
from .client_tls import open_client_tls
from .config import SecurityServerConfig
from .db import open_database
from .evidence import decryptor_for
from .ocsp_peers_app import make_ocsp_peers_app
from .ocsp_refresher import OcspRefresher
from .proxy_listener import open_proxy_listeners
from .workers import WorkerPool

__all__ = ["run_server", "running", "serve", "serving"]

_log = logging.getLogger(__name__)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
        tls = await server_tls_context(resources, clock())
        tasks: list[asyncio.Task[None]] = []
        workers = config.exchange.workers
        async with contextlib.AsyncExitStack() as stack:
            # OCSP for peers stays this process's alone; the proxy ports are
            # shared with the worker processes.
            runner = web.AppRunner(make_ocsp_peers_app(config), access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            ocsp = config.ocsp_responder
            await web.TCPSite(runner, ocsp.host, ocsp.port).start()
            _log.info("listening on %s:%s", ocsp.host, ocsp.port)
            # The client proxy's HTTPS face (information systems' TLS; the
            # connection type of each client decides what it must present).
            client_tls = await open_client_tls(
                resources.db,
                config.home,
                now=clock(),
                refresh_seconds=max(config.exchange.serverconf_cache_seconds, 0.5),
            )
            stack.push_async_callback(client_tls.close)
            await stack.enter_async_context(
                open_proxy_listeners(
                    config,
                    resources,
                    server_tls=tls,
                    client_tls=client_tls.context,
                    reuse_port=workers > 1,
                )
            )
            cp, sp = config.client_proxy, config.server_proxy
            _log.info(
                "listening on %s:%s, %s:%s (TLS) and %s:%s (mutual TLS)",
                cp.host, cp.http_port, cp.host, cp.https_port, sp.host, sp.port,
            )  # fmt: skip
            if refresh_ocsp:
                tasks.append(
                    asyncio.create_task(refresher.run(), name="ocsp-refresher")
                )
            tasks.append(
                asyncio.create_task(
                    run_archiver(
                        resources.db, config, clock=clock, decrypt=decryptor_for(config)
                    ),
                    name="message-log-archiver",
                )
            )
            for task in tasks:
                stack.push_async_callback(cancel_and_wait, task)
            if workers > 1:
                pool = WorkerPool(config, resolve_pin(config, pin), workers - 1)
                stack.push_async_callback(pool.stop)
                await pool.start()
            yield resources


@contextlib.asynccontextmanager
async def serving(
    config: SecurityServerConfig,
    *,
    pin: str | None = None,
    clock: Callable[[], dt.datetime] = _utcnow,
    refresh_ocsp: bool = True,
    download_globalconf: bool = True,
) -> AsyncIterator[ServerRuntime]:
    """The admin API at once, and the exchange as soon as it can run.

    Args:
        config: the instance configuration.
        pin: the token PIN for an unattended start; else ``[exchange]
            pin_file`` if set; else the exchange waits for a login through
            the admin API.
        clock: the current time (tests pass a shifted clock).
        refresh_ocsp: passed on to :func:`running`.
        download_globalconf: download the global configuration periodically
            (tests that save it themselves turn it off).

    Yields:
        The runtime shared by the admin API and the supervisor (its
        ``status`` says whether the exchange runs, and why not).

    Raises:
        ConfigurationError: an unreadable ``pin_file``.
        StorageError: the database cannot be opened.
        OSError: the admin port is taken.
    """
    if pin is None and config.exchange.pin_file is not None:
        pin = read_pin_file(config.exchange.pin_file)
    runtime = ServerRuntime(now=clock())
    db = await open_database(config.db_url)
    supervisor = Supervisor(
        config,
        db,
        runtime,
        start=lambda unlocked_pin: running(
            config, pin=unlocked_pin, clock=clock, refresh_ocsp=refresh_ocsp
        ),
        clock=clock,
        unattended_pin=pin,
    )
    task: asyncio.Task[None] | None = None
    downloads: asyncio.Task[None] | None = None
    runner = web.AppRunner(
        make_admin_app(config, db=db, runtime=runtime, clock=clock), access_log=None
    )
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.admin.host, config.admin.port)
        await site.start()
        _log.info("admin API listening on %s:%s", config.admin.host, config.admin.port)
        task = asyncio.create_task(supervisor.run(), name="exchange-supervisor")
        if download_globalconf:
            downloads = asyncio.create_task(
                download_globalconf_periodically(config, db, runtime, clock),
                name="globalconf-refresh",
            )
        yield runtime
    finally:
        await cancel_and_wait(downloads)
        supervisor.stopping = True
        runtime.poke()
        if task is not None:
            try:
                await asyncio.wait_for(task, 30)
            except (TimeoutError, asyncio.CancelledError):
                await cancel_and_wait(task)
        await runner.cleanup()
        await db.dispose()


async def serve(
    config: SecurityServerConfig,
    *,
    pin: str | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the admin API and the supervised exchange until ``stop`` is set.

    Args:
        config: the instance configuration.
        pin: the token PIN; else ``[exchange] pin_file``; else a login
            through the admin API.
        stop: set it to shut down cleanly; None: SIGTERM or SIGINT does.
            Either way the stop is graceful: no new connections, requests
            under way are answered (their records committed), then
            everything is closed.

    Raises:
        ConfigurationError, StorageError, OSError: see :func:`serving`.
    """
    if stop is None:
        stop = stop_on_signals()
    async with serving(config, pin=pin):
        tune_gc()
        await stop.wait()
    _log.info("stopped")


def run_server(config: SecurityServerConfig, *, pin: str | None = None) -> None:
    """Run :func:`serve` on a uvloop event loop until SIGTERM or SIGINT."""
    uvloop.run(serve(config, pin=pin))
