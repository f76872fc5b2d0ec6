"""The adapter server's aiohttp application: ``make_app(config)``.

Routes::

    POST /soap                     X-Road SOAP calls
    GET  /wsdl/{subsystem}         the subsystem's WSDL (for the security server)
    POST /rest/{serviceCode}       REST calls
    GET  /openapi/{subsystem}      the subsystem's OpenAPI 3.1 document
    /api/v1/...                    the admin REST API (API key; see admin_api)

The store, the data-source engines and the catalogue cache are opened in a
``cleanup_ctx`` (never at import). Errors on ``/soap`` become SOAP faults
carrying a correlation id that is also logged; everywhere else they become
RFC 9457 ``application/problem+json`` documents (:mod:`jplink.web`). Neither
ever holds a stack trace or a database's own text.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from jplink.errors import JPLinkError
from jplink.web import Handler, make_problem_middleware

from .admin_api import make_admin_app
from .appkeys import CONFIG, SERVICE_CODE, STATE, AdapterState
from .config import AdapterConfig
from .datasources import DataSourcePool
from .handlers import log_call, openapi, rest_call, soap_call, wsdl_document
from .runtime import CatalogCache
from .soap import build_soap_fault
from .store import open_registry

__all__ = ["SOAP_PATH", "make_app"]

log = logging.getLogger(__name__)

#: The one route whose errors are SOAP faults rather than problem documents.
SOAP_PATH = "/soap"

#: Outermost: whatever is not a SOAP fault becomes a problem document.
problem_middleware = make_problem_middleware(bearer_realm="jplink-adapter")


def _soap_fault(request: web.Request, err: JPLinkError) -> web.Response:
    correlation = str(uuid.uuid4())
    prefix = "Client" if err.http_status < 500 else "Server"
    log.warning(
        "request failed id=%s path=%s code=%s.%s", correlation, request.path, prefix,
        err.code,
    )  # fmt: skip
    # SOAP 1.1 over HTTP §6.2: a fault travels with status 500.
    return web.Response(
        status=500,
        body=build_soap_fault(err, correlation),
        content_type="text/xml",
        charset="utf-8",
    )


@web.middleware
async def call_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log one line per failed call; answer ``/soap`` failures with SOAP faults.

    Errors on other paths are re-raised for the problem middleware.
    """
    started = time.perf_counter()
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except JPLinkError as err:
        log_call(request.get(SERVICE_CODE, "-"), err.code, 0, started)
        if request.path != SOAP_PATH:
            raise
        return _soap_fault(request, err)
    except Exception:
        if request.path != SOAP_PATH:
            raise
        log.exception("unexpected error on %s", request.path)
        internal = JPLinkError("The adapter failed; the provider's log has details")
        return _soap_fault(request, internal)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    pool = DataSourcePool()
    try:
        async with open_registry(config, pool, actor="system") as registry:
            cache = CatalogCache(registry, config.catalog_refresh_seconds)
            app[STATE] = AdapterState(registry, pool, cache)
            yield
    finally:
        await pool.close()


def make_app(config: AdapterConfig) -> web.Application:
    """Build the adapter server application.

    Args:
        config: the instance configuration.

    Returns:
        The application; resources open when it starts.
    """
    app = web.Application(
        client_max_size=config.max_request_bytes,
        middlewares=[problem_middleware, call_middleware],
    )
    app[CONFIG] = config
    app.cleanup_ctx.append(_resources)
    app.router.add_post(SOAP_PATH, soap_call)
    app.router.add_get("/wsdl/{subsystem}", wsdl_document)
    app.router.add_post("/rest/{serviceCode}", rest_call)
    app.router.add_get("/openapi/{subsystem}", openapi)
    app.add_subapp("/api/v1/", make_admin_app(config))
    return app
