"""The central server's aiohttp applications.

- :func:`make_app`: the admin REST API (default port 4000), every route behind
  an API key with a role (:mod:`central_server.auth`).
- :func:`make_registration_app`: the public registration endpoint (default
  port 4001) for member-code and CSR requests.

Engines, the aiohttp client session and the CA client are created in
``cleanup_ctx`` at start-up and closed at shutdown, never at import time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from jplink.clients.ca import AiohttpCaEnrolmentClient, CaEnrolmentClient
from jplink.clients.ocsp import AiohttpOcspClient, OcspClient
from jplink.errors import ConfigurationError

from .admin_api import ROUTES
from .appkeys import CA_CLIENT, CLOCK, CONFIG, DATABASE, OCSP_CLIENT
from .auth import add_routes, auth_middleware
from .config import CentralConfig
from .db import open_database
from .management_api import add_management_service_routes
from .registration_api import add_public_routes
from .web import problem_middleware

__all__ = ["make_app", "make_registration_app", "read_ca_api_key"]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def read_ca_api_key(config: CentralConfig) -> str:
    """The CA enrolment API key from ``ca.api_key_file``.

    Raises:
        ConfigurationError: the file is missing, empty or readable by others.
    """
    path = config.ca.api_key_file
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigurationError(
                f"{path} must not be readable by others (chmod 600)"
            )
        key = path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read the CA API key file {path}: {exc}"
        ) from exc
    if not key:
        raise ConfigurationError(f"The CA API key file {path} is empty")
    return key


async def _database(app: web.Application) -> AsyncIterator[None]:
    db = await open_database(app[CONFIG].db_url)
    app[DATABASE] = db
    try:
        yield
    finally:
        await db.dispose()


async def _ca_client(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    if not config.ca.url:
        yield
        return
    key = read_ca_api_key(config)
    async with aiohttp.ClientSession() as session:
        app[CA_CLIENT] = AiohttpCaEnrolmentClient(
            session, config.ca.url, key, timeout=config.ca.timeout_seconds
        )
        yield


async def _ocsp_client(app: web.Application) -> AsyncIterator[None]:
    timeout = app[CONFIG].registration.ocsp_timeout_seconds
    async with aiohttp.ClientSession() as session:
        app[OCSP_CLIENT] = AiohttpOcspClient(session, timeout=timeout)
        yield


def _base(
    config: CentralConfig,
    max_bytes: int,
    clock: Callable[[], dt.datetime] | None,
    middlewares: list[Middleware],
) -> web.Application:
    app = web.Application(client_max_size=max_bytes, middlewares=middlewares)
    app[CONFIG] = config
    app[CLOCK] = clock or _utcnow
    app.cleanup_ctx.append(_database)
    return app


def make_app(
    config: CentralConfig,
    *,
    ca_client: CaEnrolmentClient | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> web.Application:
    """The admin REST API.

    Args:
        config: the instance configuration.
        ca_client: a CA client to use instead of one built from ``[ca]``
            (tests pass :class:`~jplink.clients.ca.FakeCaEnrolmentClient`).
        clock: the time source (default: the system clock, UTC).

    Returns:
        The application; its database opens at start-up.
    """
    app = _base(
        config,
        config.admin.max_request_bytes,
        clock,
        [problem_middleware, auth_middleware],
    )
    if ca_client is not None:
        app[CA_CLIENT] = ca_client
    else:
        app.cleanup_ctx.append(_ca_client)
    add_routes(app, ROUTES)
    return app


def make_registration_app(
    config: CentralConfig,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    ocsp_client: OcspClient | None = None,
) -> web.Application:
    """The public registration endpoint (no credentials; request tokens).

    Args:
        config: the instance configuration.
        clock: the time source (default: the system clock, UTC).
        ocsp_client: the transport for auth-certificate OCSP checks (default:
            aiohttp, with ``registration.ocsp_timeout_seconds``).

    Returns:
        The application; its database opens at start-up.
    """
    app = _base(
        config, config.registration.max_request_bytes, clock, [problem_middleware]
    )
    if ocsp_client is not None:
        app[OCSP_CLIENT] = ocsp_client
    else:
        app.cleanup_ctx.append(_ocsp_client)
    add_public_routes(app)
    add_management_service_routes(app)
    return app
