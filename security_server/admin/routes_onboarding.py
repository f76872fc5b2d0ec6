"""Onboarding through the central server (the service layer is
:mod:`security_server.registration`; the CLI is ``jplink ss csr submit`` ...).

- ``POST /api/v1/csrs/{id}/submit`` ``{"central_url": ...}``: send a CSR to
  the central server's certificate-request endpoint;
- ``POST /api/v1/csrs/{id}/fetch`` ``{"central_url"?}``: ask for its state and
  import the certificate once issued;
- ``POST /api/v1/certificates/{sha256}/register`` ``{"address": ...}``:
  ``authCertReg`` (needs the logged-in token);
- ``POST /api/v1/clients/{client}/register`` / ``.../unregister``:
  ``clientReg`` / ``clientDeletion`` through this server's client proxy.
"""

from __future__ import annotations

from aiohttp import web

from jplink.errors import InvalidRequest
from jplink.web import read_json_object

from .. import registration
from .appkeys import CONFIG, DATABASE, HTTP, RUNTIME
from .auth import Route
from .http import (
    actor,
    client_from_path,
    json_response,
    now,
    opt_str,
    req_str,
    unlocked,
)
from .roles import Role

__all__ = ["ROUTES"]

_SO = Role.SECURITY_OFFICER
_RO = Role.REGISTRATION_OFFICER


def _csr_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdecimal() or not 0 < int(text) < 2**31:
        raise InvalidRequest(f"{text!r} is not a CSR id", code="InvalidField")
    return int(text)


async def _submit(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"central_url"}))
    result = await registration.submit_csr(
        request.app[DATABASE],
        _csr_id(request),
        central_url=req_str(body, "central_url"),
        session=request.app[HTTP],
        actor=actor(request),
        now=now(request),
        timeout=request.app[CONFIG].timeouts.download_seconds,
    )
    return json_response(result)


async def _fetch(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"central_url"}))
    result = await registration.fetch_certificate(
        request.app[DATABASE],
        _csr_id(request),
        session=request.app[HTTP],
        actor=actor(request),
        now=now(request),
        central_url=opt_str(body, "central_url"),
        timeout=request.app[CONFIG].timeouts.download_seconds,
    )
    request.app[RUNTIME].poke()
    return json_response(result)


async def _register_cert(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"address"}))
    result = await registration.register_auth_cert(
        request.app[DATABASE],
        request.app[CONFIG],
        request.match_info["sha256"],
        address=req_str(body, "address"),
        pin=unlocked(request).pin,
        session=request.app[HTTP],
        actor=actor(request),
        now=now(request),
    )
    return json_response(result)


async def _register_client(request: web.Request) -> web.Response:
    result = await registration.register_client(
        request.app[DATABASE],
        request.app[CONFIG],
        client_from_path(request),
        pin=unlocked(request).pin,
        session=request.app[HTTP],
        actor=actor(request),
        now=now(request),
    )
    return json_response(result)


async def _unregister_client(request: web.Request) -> web.Response:
    result = await registration.unregister_client(
        request.app[DATABASE],
        request.app[CONFIG],
        client_from_path(request),
        session=request.app[HTTP],
        actor=actor(request),
        now=now(request),
    )
    return json_response(result)


_V1 = "/api/v1"

#: The routes of this module and the roles allowed to call each.
ROUTES = (
    Route("POST", f"{_V1}/csrs/{{id}}/submit", _submit, frozenset({_SO, _RO})),
    Route("POST", f"{_V1}/csrs/{{id}}/fetch", _fetch, frozenset({_SO, _RO})),
    Route(
        "POST",
        f"{_V1}/certificates/{{sha256}}/register",
        _register_cert,
        frozenset({_SO}),
    ),
    Route(
        "POST",
        f"{_V1}/clients/{{client}}/register",
        _register_client,
        frozenset({_RO}),
    ),
    Route(
        "POST",
        f"{_V1}/clients/{{client}}/unregister",
        _unregister_client,
        frozenset({_RO}),
    ),
)
