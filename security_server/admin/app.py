"""The admin REST API as an aiohttp application (``[admin] host:port``).

:func:`make_admin_app` is thin: the problem+json middleware (outermost), the
API-key middleware (:mod:`.auth`), and the routes of the ``routes_*``
modules, each declared with its roles. Resources not handed in (database,
runtime, outbound HTTP session) are created in ``cleanup_ctx`` and closed
with the app; ``jplink ss serve`` hands in the :class:`~.runtime.ServerRuntime`
it supervises the exchange with, so a token login through the API is the
serving process's login.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterable

import aiohttp
from aiohttp import web

from jplink.errors import Conflict, GlobalConfError
from jplink.storage import Database
from jplink.web import Handler, make_problem_middleware

from ..config import SecurityServerConfig
from ..db import open_database
from . import (
    routes_clients,
    routes_keys,
    routes_log,
    routes_onboarding,
    routes_services,
    routes_setup,
    routes_system,
)
from .appkeys import CLOCK, CONFIG, DATABASE, HTTP, RUNTIME
from .auth import Route, add_routes, auth_middleware
from .runtime import ServerRuntime

__all__ = ["ALL_ROUTES", "MAX_BODY_BYTES", "make_admin_app"]

#: Largest request body (an anchor, a certificate, a JSON document).
MAX_BODY_BYTES = 1024 * 1024

#: Every admin route with its roles.
ALL_ROUTES: tuple[Route, ...] = (
    *routes_setup.ROUTES,
    *routes_keys.ROUTES,
    *routes_clients.ROUTES,
    *routes_services.ROUTES,
    *routes_system.ROUTES,
    *routes_onboarding.ROUTES,
    *routes_log.ROUTES,
)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@web.middleware
async def _globalconf_state(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """A missing or expired global configuration is the server's state, not
    a server fault: answer 409 with the error's code instead of 500."""
    try:
        return await handler(request)
    except GlobalConfError as exc:
        raise Conflict(exc.message, code=exc.code, detail=exc.detail) from None


def make_admin_app(
    config: SecurityServerConfig,
    *,
    db: Database | None = None,
    runtime: ServerRuntime | None = None,
    http: aiohttp.ClientSession | None = None,
    clock: Callable[[], dt.datetime] = _utcnow,
    extra_routes: Iterable[Route] = (),
) -> web.Application:
    """The admin API application.

    Args:
        config: the instance configuration.
        db: the database; else opened (and migrated) at start-up and disposed
            of at clean-up.
        runtime: the serving process's runtime; else a fresh one (the token
            login then lives as long as the app).
        http: the outbound HTTP session; else one is made for the app.
        clock: the current time (tests pin it).
        extra_routes: further routes (with their roles) to serve.

    Returns:
        The application; serve it on ``config.admin``.
    """
    app = web.Application(
        middlewares=[
            make_problem_middleware(bearer_realm="jplink-ss-admin"),
            auth_middleware,
            _globalconf_state,
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app[CONFIG] = config
    app[CLOCK] = clock
    app[RUNTIME] = runtime if runtime is not None else ServerRuntime(now=clock())
    add_routes(app, (*ALL_ROUTES, *extra_routes))

    async def resources(app: web.Application) -> AsyncIterator[None]:
        opened = db is None
        app[DATABASE] = db if db is not None else await open_database(config.db_url)
        own_http = http is None
        app[HTTP] = http if http is not None else aiohttp.ClientSession()
        try:
            yield
        finally:
            if own_http:
                await app[HTTP].close()
            if opened:
                await app[DATABASE].dispose()

    app.cleanup_ctx.append(resources)
    return app
