"""The admin REST API, mounted at ``/api/v1/`` on the adapter app.

Routes (every one needs ``Authorization: Bearer <admin API key>``)::

    GET    /api/v1/datasources               list (never a password)
    POST   /api/v1/datasources               create or replace
    GET    /api/v1/datasources/{name}        show
    POST   /api/v1/datasources/{name}/test   connect and run SELECT 1
    DELETE /api/v1/datasources/{name}        delete (refused while used)
    POST   /api/v1/services/preview          validate + preview, store nothing
    POST   /api/v1/services                  register (validated and previewed)
    GET    /api/v1/services                  list (?subsystem=)
    GET    /api/v1/services/{code}           show
    PUT    /api/v1/services/{code}           update (validated and previewed)
    POST   /api/v1/services/{code}/enable    enable
    POST   /api/v1/services/{code}/disable   disable
    DELETE /api/v1/services/{code}           delete
    GET    /api/v1/export?format=json|toml   export services and data sources
    POST   /api/v1/import?format=json|toml   import such a file (all or nothing)
    GET    /api/v1/audit?limit=&offset=      the audit log, newest first

Handlers call the same :class:`~adapter_server.registry.Registry` methods as
the CLI, acting as ``apikey:<key id>`` so that the audit log names the key,
and refresh the running catalogue after a change. The key check runs in a
middleware before any handler or body parsing, for matched and unmatched
paths alike, so a route can never be reached without a valid key. Errors are
RFC 9457 ``application/problem+json`` documents (:mod:`jplink.web`).
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from jplink.errors import InvalidRequest
from jplink.web import (
    PROBLEM_JSON,
    Handler,
    bearer_token,
    make_problem_middleware,
    read_json_object,
)

from .apikeys import ApiKeyInfo, ApiKeyStore
from .appkeys import STATE, AdapterState
from .audit import api_key_actor
from .config import AdapterConfig
from .portable import (
    datasource_from_dict,
    datasource_to_dict,
    dump_json,
    dump_toml,
    load_document,
    service_from_dict,
    service_to_dict,
)
from .registry import Registry

__all__ = ["API_KEYS", "PRINCIPAL", "PROBLEM_JSON", "make_admin_app"]

log = logging.getLogger(__name__)

API_KEYS = web.AppKey("api_keys", ApiKeyStore)
PRINCIPAL = web.RequestKey("principal", ApiKeyInfo)

#: Errors become problem documents; 401s challenge with realm ``jplink-adapter``.
problem_middleware = make_problem_middleware(bearer_realm="jplink-adapter")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse any admin request without a valid key, before anything else runs.

    Raises:
        Unauthenticated: no, malformed or unknown key (401).
    """
    request[PRINCIPAL] = request.app[API_KEYS].authenticate(bearer_token(request))
    return await handler(request)


def _state(request: web.Request) -> AdapterState:
    return request.config_dict[STATE]


def _registry(request: web.Request) -> Registry:
    """The registry, recording changes as made by the caller's key."""
    actor = api_key_actor(request[PRINCIPAL].key_id)
    return _state(request).registry.acting_as(actor)


def _changed(request: web.Request, what: str) -> None:
    _state(request).cache.invalidate()
    log.info("admin %s by key %s", what, request[PRINCIPAL].key_id)


def _int_query(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdecimal() or len(text) > 9:
        raise InvalidRequest(
            f"Query {name!r} must be a non-negative integer", code="InvalidQuery"
        )
    return int(text)


# -- data sources ---------------------------------------------------------


async def list_datasources(request: web.Request) -> web.Response:
    sources = await _registry(request).list_datasources()
    return web.json_response([datasource_to_dict(d) for d in sources])


async def save_datasource(request: web.Request) -> web.Response:
    source, password = datasource_from_dict(await read_json_object(request), "body")
    saved = await _registry(request).save_datasource(source, password)
    _changed(request, f"saved data source {saved.name}")
    return web.json_response(datasource_to_dict(saved), status=201)


async def show_datasource(request: web.Request) -> web.Response:
    resolved = await _registry(request).resolve(request.match_info["name"])
    return web.json_response(datasource_to_dict(resolved.definition))


async def test_datasource(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    started = time.perf_counter()
    await _registry(request).test_datasource(name)
    ms = round((time.perf_counter() - started) * 1000, 2)
    return web.json_response({"name": name, "reachable": True, "ms": ms})


async def delete_datasource(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    await _registry(request).delete_datasource(name)
    _changed(request, f"deleted data source {name}")
    return web.Response(status=204)


# -- services -------------------------------------------------------------


async def preview_service(request: web.Request) -> web.Response:
    service = service_from_dict(await read_json_object(request), "body")
    prepared = await _registry(request).preview(service)
    return web.json_response(service_to_dict(prepared))


async def register_service(request: web.Request) -> web.Response:
    service = service_from_dict(await read_json_object(request), "body")
    stored = await _registry(request).register(service)
    _changed(request, f"registered service {stored.code}")
    return web.json_response(service_to_dict(stored), status=201)


async def list_services(request: web.Request) -> web.Response:
    subsystem = request.query.get("subsystem")
    services = await _registry(request).list_services(subsystem)
    return web.json_response([service_to_dict(s) for s in services])


async def show_service(request: web.Request) -> web.Response:
    service = await _registry(request).get(request.match_info["code"])
    return web.json_response(service_to_dict(service))


async def update_service(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    body = await read_json_object(request)
    if body.setdefault("code", code) != code:
        raise InvalidRequest("The body's code differs from the URL's")
    service = service_from_dict(body, "body")
    stored = await _registry(request).register(service, replace=True)
    _changed(request, f"updated service {code}")
    return web.json_response(service_to_dict(stored))


def _set_enabled(enabled: bool) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        code = request.match_info["code"]
        registry = _registry(request)
        await registry.set_enabled(code, enabled)
        _changed(request, f"{'enabled' if enabled else 'disabled'} service {code}")
        return web.json_response(service_to_dict(await registry.get(code)))

    return handler


async def delete_service(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    await _registry(request).delete(code)
    _changed(request, f"deleted service {code}")
    return web.Response(status=204)


def _format(request: web.Request) -> str:
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "toml"):
        raise InvalidRequest("format must be json or toml")
    return fmt


async def export_services(request: web.Request) -> web.Response:
    fmt = _format(request)
    document = await _registry(request).export_document()
    text = dump_toml(document) if fmt == "toml" else dump_json(document)
    ctype = "application/toml" if fmt == "toml" else "application/json"
    return web.Response(text=text, content_type=ctype)


async def import_services(request: web.Request) -> web.Response:
    fmt = _format(request)
    try:
        text = (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The file is not UTF-8 text") from None
    # All or nothing: a failed import has stored none of its items.
    codes = await _registry(request).import_document(load_document(text, fmt))
    _changed(request, "imported services")
    return web.json_response({"imported": codes})


async def audit_log(request: web.Request) -> web.Response:
    """``GET /audit?limit=&offset=``: recorded changes, newest first."""
    entries = await _state(request).registry.audit.entries(
        limit=_int_query(request, "limit", 100),
        offset=_int_query(request, "offset", 0),
    )
    return web.json_response({"entries": [e.to_dict() for e in entries]})


def make_admin_app(config: AdapterConfig) -> web.Application:
    """The admin sub-application (mount it at ``/api/v1/``).

    Args:
        config: the instance configuration (for the API key file).

    Returns:
        The sub-application; it reads the adapter state from its parent.
    """
    app = web.Application(middlewares=[problem_middleware, auth_middleware])
    app[API_KEYS] = ApiKeyStore(config.admin_api_key_file)
    r = app.router
    r.add_get("/datasources", list_datasources)
    r.add_post("/datasources", save_datasource)
    r.add_get("/datasources/{name}", show_datasource)
    r.add_post("/datasources/{name}/test", test_datasource)
    r.add_delete("/datasources/{name}", delete_datasource)
    r.add_post("/services/preview", preview_service)
    r.add_post("/services", register_service)
    r.add_get("/services", list_services)
    r.add_get("/services/{code}", show_service)
    r.add_put("/services/{code}", update_service)
    r.add_post("/services/{code}/enable", _set_enabled(True))
    r.add_post("/services/{code}/disable", _set_enabled(False))
    r.add_delete("/services/{code}", delete_service)
    r.add_get("/export", export_services)
    r.add_post("/import", import_services)
    r.add_get("/audit", audit_log)
    return app
