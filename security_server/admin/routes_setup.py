"""Setup routes: status, initialisation, the software token, global configuration.

- ``GET /api/v1/status``: identity, token, global configuration and whether
  the exchange listeners run (and why not).
- ``POST /api/v1/initialization``: upload the anchor with the owner member and
  server code (``identity.initialize``).
- ``GET /api/v1/tokens/0``, ``POST .../init``, ``PUT .../login``,
  ``PUT .../logout``: X-Road's software token is token ``0``. Logging in keeps
  the PIN in this process's memory only; the supervisor of ``jplink ss
  serve`` then starts the exchange when it can.
- ``GET /api/v1/global-configuration``, ``POST .../download``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from jplink.errors import GlobalConfError, InvalidRequest, NotFound, Unauthenticated
from jplink.identifiers import parse_client_id
from jplink.web import read_json_object

from .. import audit, confclient, identity, softtoken
from .appkeys import CONFIG, DATABASE, RUNTIME
from .auth import Route
from .http import actor, json_response, now, req_str
from .roles import ALL_ROLES, Role

__all__ = ["ROUTES"]

_SO = Role.SECURITY_OFFICER
_RO = Role.REGISTRATION_OFFICER
_SYS = Role.SYSTEM_ADMINISTRATOR
_AUD = Role.AUDITOR


async def _status(request: web.Request) -> web.Response:
    db, config = request.app[DATABASE], request.app[CONFIG]
    runtime = request.app[RUNTIME]
    when = now(request)
    result: dict[str, Any] = {}
    try:
        result["server"] = await identity.get_identity(db)
    except NotFound as exc:
        result["server"] = None
        result["server_error"] = exc.message
    try:
        token: Any = await softtoken.get_token(db)
    except NotFound:
        token = None
    result["token"] = {"info": token, "logged_in": runtime.login.is_logged_in}
    try:
        result["global_configuration"] = confclient.global_configuration_status(
            config, now=when
        )
    except (NotFound, GlobalConfError) as exc:
        result["global_configuration"] = None
        result["global_configuration_error"] = exc.message
    result["exchange"] = runtime.status
    return json_response(result)


async def _initialize(request: web.Request) -> web.Response:
    body = await read_json_object(
        request, allowed=frozenset({"anchor", "owner", "owner_name", "server_code"})
    )
    anchor = req_str(body, "anchor")
    try:
        info = await identity.initialize(
            request.app[DATABASE],
            request.app[CONFIG],
            actor(request),
            anchor=anchor.encode("utf-8"),
            owner=parse_client_id(req_str(body, "owner")),
            owner_name=req_str(body, "owner_name"),
            server_code=req_str(body, "server_code"),
            now=now(request),
        )
    except GlobalConfError as exc:
        # A bad upload, not a server fault: 400 with the parser's reason.
        raise InvalidRequest(
            f"The configuration anchor is not valid: {exc.message}",
            code="InvalidAnchor",
        ) from None
    request.app[RUNTIME].poke()
    return json_response(info, status=201)


async def _token(request: web.Request) -> web.Response:
    info = await softtoken.get_token(request.app[DATABASE])
    logged_in = request.app[RUNTIME].login.is_logged_in
    return json_response({"id": "0", "info": info, "logged_in": logged_in})


async def _pin(request: web.Request) -> str:
    body = await read_json_object(request, allowed=frozenset({"pin"}))
    return req_str(body, "pin")


async def _token_init(request: web.Request) -> web.Response:
    pin = await _pin(request)
    info = await softtoken.init_token(
        request.app[DATABASE], actor(request), pin=pin, now=now(request)
    )
    return json_response(info, status=201)


async def _token_login(request: web.Request) -> web.Response:
    pin = await _pin(request)
    db, runtime = request.app[DATABASE], request.app[RUNTIME]
    when = now(request)
    try:
        await runtime.login.login(db, pin)
    except Unauthenticated as exc:
        async with db.transaction() as session:
            audit.record(
                session,
                actor=actor(request),
                action="token.login-failed",
                target="0",
                now=when,
            )
        # 400, not 401: the API key was fine, the PIN was not.
        raise InvalidRequest(exc.message, code=exc.code) from None
    async with db.transaction() as session:
        audit.record(
            session, actor=actor(request), action="token.login", target="0", now=when
        )
    runtime.poke()
    return json_response({"id": "0", "logged_in": True})


async def _token_logout(request: web.Request) -> web.Response:
    db, runtime = request.app[DATABASE], request.app[RUNTIME]
    runtime.login.logout()
    async with db.transaction() as session:
        audit.record(
            session,
            actor=actor(request),
            action="token.logout",
            target="0",
            now=now(request),
        )
    runtime.poke()
    return json_response({"id": "0", "logged_in": False})


async def _conf_status(request: web.Request) -> web.Response:
    try:
        status = confclient.global_configuration_status(
            request.app[CONFIG], now=now(request)
        )
    except GlobalConfError as exc:
        raise NotFound(exc.message, code="GlobalConfNotAvailable") from None
    return json_response(status)


async def _conf_download(request: web.Request) -> web.Response:
    status = await confclient.download_global_configuration(
        request.app[DATABASE], request.app[CONFIG], actor(request), now=now(request)
    )
    request.app[RUNTIME].poke()
    return json_response(status)


_V1 = "/api/v1"

#: The routes of this module and the roles allowed to call each.
ROUTES = (
    Route("GET", f"{_V1}/status", _status, ALL_ROLES),
    Route("POST", f"{_V1}/initialization", _initialize, frozenset({_SYS, _SO})),
    Route("GET", f"{_V1}/tokens/0", _token, frozenset({_SO, _RO, _SYS, _AUD})),
    Route("POST", f"{_V1}/tokens/0/init", _token_init, frozenset({_SO, _SYS})),
    Route("PUT", f"{_V1}/tokens/0/login", _token_login, frozenset({_SO, _RO})),
    Route("PUT", f"{_V1}/tokens/0/logout", _token_logout, frozenset({_SO, _RO})),
    Route(
        "GET",
        f"{_V1}/global-configuration",
        _conf_status,
        frozenset({_SYS, _SO, _RO, _AUD}),
    ),
    Route(
        "POST",
        f"{_V1}/global-configuration/download",
        _conf_download,
        frozenset({_SYS, _SO}),
    ),
)
