"""Diagnostics, the audit log and API keys.

- ``GET /api/v1/diagnostics/global-configuration``, ``.../ocsp`` (each
  certificate's OCSP state), ``.../timestamping`` (a time-stamp request to
  each approved TSA), ``POST .../connection`` ``{"address": "host[:port]"}``
  (a peer security server's server proxy);
- ``GET /api/v1/audit-log?limit=N`` (security officer, system administrator);
- ``GET/POST /api/v1/api-keys``, ``DELETE /api/v1/api-keys/{key_id}`` (system
  administrator; the plain key is in the POST answer only).
"""

from __future__ import annotations

from aiohttp import web

from jplink.errors import GlobalConfError, InvalidRequest, NotFound
from jplink.globalconf import SharedParameters
from jplink.web import read_json_object

from .. import audit, diagnostics
from ..exchange_ports import SavedConfProvider
from ..identity import read_anchor
from . import apikeys
from .appkeys import CONFIG, DATABASE, HTTP
from .auth import Route
from .http import actor, json_response, now, req_str
from .peer_check import check_peer
from .roles import Role, parse_roles

__all__ = ["ROUTES"]

_SO = Role.SECURITY_OFFICER
_SYS = Role.SYSTEM_ADMINISTRATOR
_AUD = Role.AUDITOR
_DIAG = frozenset({_SYS, _SO, _AUD})


def _shared(request: web.Request) -> SharedParameters:
    config = request.app[CONFIG]
    instance = read_anchor(config).instance_identifier
    provider = SavedConfProvider(config.globalconf.directory, instance)
    try:
        return provider.current(now=now(request))
    except GlobalConfError as exc:
        raise NotFound(exc.message, code="GlobalConfNotAvailable") from None


async def _diag_conf(request: web.Request) -> web.Response:
    try:
        status = diagnostics.globalconf_diagnostics(
            request.app[CONFIG], now=now(request)
        )
    except GlobalConfError as exc:
        raise NotFound(exc.message, code="GlobalConfNotAvailable") from None
    return json_response(status)


async def _diag_ocsp(request: web.Request) -> web.Response:
    freshness: int | None = None
    try:
        freshness = _shared(request).global_settings.ocsp_freshness_seconds
    except NotFound:
        freshness = None
    found = await diagnostics.certificate_diagnostics(
        request.app[DATABASE], now=now(request), freshness_seconds=freshness
    )
    return json_response(found)


async def _diag_tsa(request: web.Request) -> web.Response:
    found = await diagnostics.tsa_diagnostics(
        _shared(request), now=now(request), session=request.app[HTTP]
    )
    return json_response(found)


async def _diag_connection(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"address"}))
    address = req_str(body, "address")
    try:
        shared: SharedParameters | None = _shared(request)
    except NotFound:
        shared = None
    result = await check_peer(
        address, shared=shared, timeout=request.app[CONFIG].timeouts.connect_seconds
    )
    return json_response(result)


async def _audit_log(request: web.Request) -> web.Response:
    text = request.query.get("limit", "100")
    if not text.isdecimal() or not 1 <= int(text) <= 1000:
        raise InvalidRequest("limit must be 1-1000", code="InvalidField")
    rows = await audit.list_audit(request.app[DATABASE], limit=int(text))
    return json_response(rows)


async def _list_keys(request: web.Request) -> web.Response:
    return json_response(await apikeys.list_api_keys(request.app[DATABASE]))


async def _create_key(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"name", "roles"}))
    words = body.get("roles")
    if not isinstance(words, list):
        raise InvalidRequest(
            "Field 'roles' must be a list of role words", code="InvalidRole"
        )
    info, key = await apikeys.create_api_key(
        request.app[DATABASE],
        actor(request),
        name=req_str(body, "name"),
        roles=parse_roles(words),
        now=now(request),
    )
    return json_response({"key": key, "info": info}, status=201)


async def _revoke_key(request: web.Request) -> web.Response:
    info = await apikeys.revoke_api_key(
        request.app[DATABASE],
        actor(request),
        request.match_info["key_id"],
        now=now(request),
    )
    return json_response(info)


_V1 = "/api/v1"

#: The routes of this module and the roles allowed to call each.
ROUTES = (
    Route("GET", f"{_V1}/diagnostics/global-configuration", _diag_conf, _DIAG),
    Route("GET", f"{_V1}/diagnostics/ocsp", _diag_ocsp, _DIAG),
    Route("GET", f"{_V1}/diagnostics/timestamping", _diag_tsa, _DIAG),
    Route(
        "POST",
        f"{_V1}/diagnostics/connection",
        _diag_connection,
        frozenset({_SYS, _SO}),
    ),
    Route("GET", f"{_V1}/audit-log", _audit_log, frozenset({_SO, _SYS})),
    Route("GET", f"{_V1}/api-keys", _list_keys, frozenset({_SYS})),
    Route("POST", f"{_V1}/api-keys", _create_key, frozenset({_SYS})),
    Route("DELETE", f"{_V1}/api-keys/{{key_id}}", _revoke_key, frozenset({_SYS})),
)
