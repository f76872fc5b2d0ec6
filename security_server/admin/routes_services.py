"""Service descriptions and services of a client (service administrator).

- ``GET /api/v1/clients/{client}/service-descriptions``;
- ``POST .../service-descriptions`` ``{"url": ...}``: download the WSDL and
  add it (disabled, as in X-Road);
- ``POST .../service-descriptions/refresh`` ``{"url": ...}``: download again
  and answer what was added, removed and changed;
- ``POST .../service-descriptions/enable`` ``{"url": ...}`` and
  ``.../disable`` ``{"url": ..., "notice": ...}``;
- ``DELETE .../service-descriptions?url=...``;
- ``GET /api/v1/clients/{client}/services`` and
  ``PATCH .../services/{code}`` ``{"url", "timeout_seconds", "tls_verify"}``.

A description is named by its URL in the body or query (a URL does not fit
in a path segment).
"""

from __future__ import annotations

from aiohttp import web

from jplink.errors import InvalidRequest
from jplink.web import read_json_object

from .. import services
from ..fetch import fetch_description
from .appkeys import CONFIG, DATABASE, HTTP
from .auth import Route
from .http import (
    actor,
    client_from_path,
    json_response,
    now,
    opt_bool,
    opt_number,
    opt_str,
    query_str,
    req_str,
)
from .roles import Role
from .service_refresh import refresh_wsdl_description

__all__ = ["ROUTES"]

_RO = Role.REGISTRATION_OFFICER
_SA = Role.SERVICE_ADMINISTRATOR
_AUD = Role.AUDITOR
_VIEW = frozenset({_SA, _RO, _AUD})
_EDIT = frozenset({_SA})


async def _download(request: web.Request, url: str) -> bytes:
    return await fetch_description(
        url,
        timeout=request.app[CONFIG].timeouts.download_seconds,
        session=request.app[HTTP],
    )


async def _list_descriptions(request: web.Request) -> web.Response:
    found = await services.list_descriptions(
        request.app[DATABASE], client_from_path(request)
    )
    return json_response(found)


async def _add_description(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"url", "type"}))
    kind = opt_str(body, "type") or "wsdl"
    if kind != "wsdl":
        raise InvalidRequest(
            "Only WSDL service descriptions can be added", code="InvalidField"
        )
    client = client_from_path(request)
    url = req_str(body, "url")
    wsdl = await _download(request, url)
    info = await services.add_wsdl_description(
        request.app[DATABASE],
        actor(request),
        client,
        url=url,
        wsdl=wsdl,
        now=now(request),
    )
    return json_response(info, status=201)


async def _refresh(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"url"}))
    client = client_from_path(request)
    url = req_str(body, "url")
    wsdl = await _download(request, url)
    result = await refresh_wsdl_description(
        request.app[DATABASE], actor(request), client, url, wsdl=wsdl, now=now(request)
    )
    return json_response(result)


async def _enable(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"url"}))
    await services.set_description_enabled(
        request.app[DATABASE],
        actor(request),
        client_from_path(request),
        req_str(body, "url"),
        enabled=True,
        now=now(request),
    )
    return web.Response(status=204)


async def _disable(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"url", "notice"}))
    await services.set_description_enabled(
        request.app[DATABASE],
        actor(request),
        client_from_path(request),
        req_str(body, "url"),
        enabled=False,
        notice=opt_str(body, "notice") or "",
        now=now(request),
    )
    return web.Response(status=204)


async def _delete_description(request: web.Request) -> web.Response:
    await services.delete_description(
        request.app[DATABASE],
        actor(request),
        client_from_path(request),
        query_str(request, "url"),
        now=now(request),
    )
    return web.Response(status=204)


async def _list_services(request: web.Request) -> web.Response:
    found = await services.list_services(
        request.app[DATABASE], client_from_path(request)
    )
    return json_response(found)


async def _update_service(request: web.Request) -> web.Response:
    body = await read_json_object(
        request, allowed=frozenset({"url", "timeout_seconds", "tls_verify"})
    )
    info = await services.update_service(
        request.app[DATABASE],
        actor(request),
        client_from_path(request),
        request.match_info["code"],
        url=opt_str(body, "url"),
        timeout_seconds=opt_number(body, "timeout_seconds"),
        tls_verify=opt_bool(body, "tls_verify"),
        now=now(request),
    )
    return json_response(info)


_D = "/api/v1/clients/{client}/service-descriptions"
_S = "/api/v1/clients/{client}/services"

#: The routes of this module and the roles allowed to call each.
ROUTES = (
    Route("GET", _D, _list_descriptions, _VIEW),
    Route("POST", _D, _add_description, _EDIT),
    Route("DELETE", _D, _delete_description, _EDIT),
    Route("POST", f"{_D}/refresh", _refresh, _EDIT),
    Route("POST", f"{_D}/enable", _enable, _EDIT),
    Route("POST", f"{_D}/disable", _disable, _EDIT),
    Route("GET", _S, _list_services, _VIEW),
    Route("PATCH", f"{_S}/{{code}}", _update_service, _EDIT),
)
