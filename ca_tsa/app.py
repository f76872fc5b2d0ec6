"""aiohttp application factories: CA API + OCSP (one listener) and the TSA.

Both apps get the same start-up: a ``cleanup_ctx`` entry that loads the CA
material (so a broken home fails at start, not at the first request), creates
the database, brings its schema to head, and disposes the engine at shutdown.
That entry is appended *before* the OCSP/TSA ``setup_*`` functions run, so
their own contexts can use ``app[DATABASE]`` and ``app[MATERIAL]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from jplink.storage import open_component_database

from .api import problem_middleware, setup_enrolment
from .appkeys import CONFIG, DATABASE, MATERIAL
from .config import CaTsaConfig
from .home import load_ca_material
from .models import MIGRATIONS

__all__ = ["MIGRATIONS", "base_app", "make_app", "make_tsa_app"]


def _resources(
    config: CaTsaConfig,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        app[MATERIAL] = load_ca_material(config)
        db = await open_component_database(config.db_url, MIGRATIONS)
        try:
            app[DATABASE] = db
            yield
        finally:
            await db.dispose()

    return resources


def base_app(config: CaTsaConfig, *, max_request_bytes: int) -> web.Application:
    """An app with the config, the problem middleware and the resources context.

    Args:
        config: the instance configuration (``app[CONFIG]``).
        max_request_bytes: aiohttp ``client_max_size``: larger bodies get 413.
    """
    app = web.Application(
        client_max_size=max_request_bytes, middlewares=[problem_middleware]
    )
    app[CONFIG] = config
    app.cleanup_ctx.append(_resources(config))
    return app


def make_app(config: CaTsaConfig) -> web.Application:
    """The CA enrolment API and the OCSP responder (``api.host``:``api.port``).

    Routes: ``/api/v1/...`` (see :mod:`ca_tsa.api`), ``POST /ocsp`` and
    ``GET /ocsp/{b64}`` (see :mod:`ca_tsa.ocsp.http`).
    """
    from .ocsp.http import setup_ocsp

    app = base_app(
        config,
        max_request_bytes=max(
            config.api.max_request_bytes, config.ocsp.max_request_bytes
        ),
    )
    setup_enrolment(app)
    setup_ocsp(app)
    return app


def make_tsa_app(config: CaTsaConfig) -> web.Application:
    """The RFC 3161 time-stamping service (``tsa.host``:``tsa.port``)."""
    from .tsa.http import setup_tsa

    app = base_app(config, max_request_bytes=config.tsa.max_request_bytes)
    setup_tsa(app)
    return app
