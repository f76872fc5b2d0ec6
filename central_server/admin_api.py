"""The admin REST API (port 4000): thin handlers over the service layer.

Each handler parses JSON, calls one service coroutine with the caller as
actor, and returns JSON; errors become problem documents in the middleware
(:mod:`central_server.web`) and roles are enforced by
:mod:`central_server.auth` from the :data:`ROUTES` table.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jplink.errors import ConfigurationError, InvalidRequest
from jplink.identifiers import (
    ClientId,
    GlobalGroupId,
    parse_client_id,
    parse_identifier,
    parse_security_server_id,
)

from . import (
    apikeys,
    audit,
    cert_requests,
    groups,
    member_requests,
    registry,
    servers,
    trust,
)
from . import serialize as ser
from .apikeys import Role
from .appkeys import CA_CLIENT, CLOCK, DATABASE, PRINCIPAL
from .auth import ALL_ROLES, Route
from .management_api import MANAGEMENT_ROUTES
from .member_requests import RequestStatus
from .web import json_body, opt_str, req_str, request_id

__all__ = ["ROUTES"]

_RO = frozenset({Role.REGISTRATION_OFFICER})
_SO = frozenset({Role.SECURITY_OFFICER})
_SA = frozenset({Role.SYSTEM_ADMINISTRATOR})


def _ctx(request: web.Request) -> tuple[Any, str, dt.datetime]:
    app = request.app
    return app[DATABASE], request[PRINCIPAL].actor, app[CLOCK]()


def _member_id(text: str) -> ClientId:
    ident = parse_client_id(text)
    if ident.subsystem_code is not None:
        raise InvalidRequest(f"{text} is not a MEMBER identifier")
    return ident


def _group_id(text: str) -> GlobalGroupId:
    ident = parse_identifier(text)
    if not isinstance(ident, GlobalGroupId):
        raise InvalidRequest(f"{text} is not a GLOBALGROUP identifier")
    return ident


def _cert(text: str | None, name: str) -> bytes | None:
    """A certificate given as PEM or base64 DER."""
    if text is None:
        return None
    try:
        if text.lstrip().startswith("-----BEGIN"):
            return x509.load_pem_x509_certificate(text.encode()).public_bytes(
                Encoding.DER
            )
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise InvalidRequest(f"{name} is neither PEM nor base64 DER") from exc


def _req_cert(body: dict[str, Any], name: str) -> bytes:
    der = _cert(req_str(body, name), name)
    assert der is not None  # req_str refused None
    return der


def _status(request: web.Request) -> RequestStatus | None:
    text = request.query.get("status")
    try:
        return RequestStatus(text) if text else None
    except ValueError:
        raise InvalidRequest(f"Unknown status {text!r}") from None


async def get_parameters(request: web.Request) -> web.Response:
    return web.json_response(
        ser.parameters_json(await registry.get_parameters(request.app[DATABASE]))
    )


async def set_parameter(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    name = request.match_info["name"]
    body = await json_body(request, frozenset({"value"}))
    if name == "managementServiceProvider":
        provider = parse_client_id(req_str(body, "value"))
        params = await registry.set_management_service_provider(
            db, actor, provider, now=now
        )
    else:
        try:
            param = registry.Parameter(name)
        except ValueError:
            raise InvalidRequest(f"Unknown parameter {name!r}") from None
        value = body.get("value")
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRequest(f"{name} must be an integer")
        params = await registry.set_parameter(db, actor, param, value, now=now)
    return web.json_response(ser.parameters_json(params))


async def list_member_classes(request: web.Request) -> web.Response:
    return web.json_response(await registry.list_member_classes(request.app[DATABASE]))


async def add_member_class(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"code", "description"}))
    code = req_str(body, "code")
    await registry.add_member_class(
        db, actor, code, opt_str(body, "description") or "", now=now
    )
    return web.json_response({"code": code}, status=201)


async def list_members(request: web.Request) -> web.Response:
    members = await registry.list_members(request.app[DATABASE])
    return web.json_response({"members": [ser.member_json(m) for m in members]})


async def add_member(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"id", "name"}))
    info = await registry.add_member(
        db, actor, _member_id(req_str(body, "id")), req_str(body, "name"), now=now
    )
    return web.json_response(ser.member_json(info), status=201)


async def add_subsystem(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"id", "name"}))
    ident = parse_client_id(req_str(body, "id"))
    await registry.add_subsystem(db, actor, ident, name=opt_str(body, "name"), now=now)
    return web.json_response({"id": str(ident)}, status=201)


async def list_servers(request: web.Request) -> web.Response:
    found = await servers.list_security_servers(request.app[DATABASE])
    return web.json_response({"securityServers": [ser.server_json(s) for s in found]})


async def add_server(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"id", "address"}))
    ident = parse_security_server_id(req_str(body, "id"))
    info = await servers.add_security_server(
        db, actor, ident, address=opt_str(body, "address"), now=now
    )
    return web.json_response(ser.server_json(info), status=201)


async def add_auth_cert(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"server", "certificate"}))
    ident = parse_security_server_id(req_str(body, "server"))
    digest = await servers.register_auth_cert(
        db, actor, ident, _req_cert(body, "certificate"), now=now
    )
    return web.json_response({"authCertHash": digest}, status=201)


async def add_server_client(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"server", "client"}))
    srv = parse_security_server_id(req_str(body, "server"))
    client = parse_client_id(req_str(body, "client"))
    await servers.add_server_client(db, actor, srv, client, now=now)
    return web.json_response({"server": str(srv), "client": str(client)}, status=201)


async def list_groups(request: web.Request) -> web.Response:
    found = await groups.list_global_groups(request.app[DATABASE])
    return web.json_response({"globalGroups": [ser.group_json(g) for g in found]})


async def add_group(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"id", "description"}))
    info = await groups.add_global_group(
        db,
        actor,
        _group_id(req_str(body, "id")),
        opt_str(body, "description") or "",
        now=now,
    )
    return web.json_response(ser.group_json(info), status=201)


async def add_group_member(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"group", "client"}))
    group, client = (
        _group_id(req_str(body, "group")),
        parse_client_id(req_str(body, "client")),
    )
    await groups.add_group_member(db, actor, group, client, now=now)
    return web.json_response({"group": str(group), "client": str(client)}, status=201)


def _ca_info(body: Any, name: str) -> trust.CaInfo:
    if not isinstance(body, dict):
        raise InvalidRequest(f"{name} must be an object")
    unknown = sorted(set(body) - {"cert", "ocspUrl", "ocspCert"})
    if unknown:
        raise InvalidRequest(f"Unknown field(s) in {name}: {', '.join(unknown)}")
    return trust.CaInfo(
        _req_cert(body, "cert"),
        opt_str(body, "ocspUrl"),
        _cert(opt_str(body, "ocspCert"), "ocspCert"),
    )


async def list_cas(request: web.Request) -> web.Response:
    found = await trust.list_approved_cas(request.app[DATABASE])
    return web.json_response({"approvedCas": [ser.ca_json(c) for c in found]})


async def add_ca(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    fields = {
        "name",
        "topCa",
        "intermediates",
        "certificateProfile",
        "authenticationOnly",
    }
    body = await json_body(request, frozenset(fields))
    inters = body.get("intermediates", [])
    if not isinstance(inters, list):
        raise InvalidRequest("intermediates must be a list")
    auth_only = body.get("authenticationOnly", False)
    if not isinstance(auth_only, bool):
        raise InvalidRequest("authenticationOnly must be true or false")
    info = await trust.add_approved_ca(
        db,
        actor,
        name=req_str(body, "name"),
        top_ca=_ca_info(body.get("topCa"), "topCa"),
        intermediates=[_ca_info(i, "intermediates[]") for i in inters],
        certificate_profile=req_str(body, "certificateProfile"),
        authentication_only=auth_only,
        now=now,
    )
    return web.json_response(ser.ca_json(info), status=201)


async def list_tsas(request: web.Request) -> web.Response:
    found = await trust.list_approved_tsas(request.app[DATABASE])
    return web.json_response({"approvedTsas": [ser.tsa_json(t) for t in found]})


async def add_tsa(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"name", "url", "cert"}))
    info = await trust.add_approved_tsa(
        db,
        actor,
        name=req_str(body, "name"),
        url=req_str(body, "url"),
        cert_der=_req_cert(body, "cert"),
        now=now,
    )
    return web.json_response(ser.tsa_json(info), status=201)


async def list_member_requests(request: web.Request) -> web.Response:
    found = await member_requests.list_member_requests(
        request.app[DATABASE], status=_status(request)
    )
    return web.json_response(
        {"memberRequests": [ser.member_request_json(r) for r in found]}
    )


async def approve_member_request(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"memberCode"}))
    info = await member_requests.approve_member_request(
        db, actor, request_id(request), member_code=opt_str(body, "memberCode"), now=now
    )
    return web.json_response(ser.member_json(info))


async def decline_member_request(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"reason"}))
    view = await member_requests.decline_member_request(
        db, actor, request_id(request), req_str(body, "reason"), now=now
    )
    return web.json_response(ser.member_request_json(view))


async def list_cert_requests(request: web.Request) -> web.Response:
    found = await cert_requests.list_certificate_requests(
        request.app[DATABASE], status=_status(request)
    )
    return web.json_response(
        {"certificateRequests": [ser.cert_request_json(r) for r in found]}
    )


async def approve_cert_request(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    await json_body(request, frozenset())
    ca = request.app.get(CA_CLIENT)
    if ca is None:
        raise ConfigurationError("No CA is configured ([ca] url in central.toml)")
    view = await cert_requests.approve_certificate_request(
        db, actor, request_id(request), ca, now=now
    )
    return web.json_response(ser.cert_request_json(view))


async def decline_cert_request(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"reason"}))
    view = await cert_requests.decline_certificate_request(
        db, actor, request_id(request), req_str(body, "reason"), now=now
    )
    return web.json_response(ser.cert_request_json(view))


async def list_api_keys(request: web.Request) -> web.Response:
    found = await apikeys.list_api_keys(request.app[DATABASE])
    return web.json_response({"apiKeys": [ser.api_key_json(k) for k in found]})


async def create_api_key(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    body = await json_body(request, frozenset({"name", "role"}))
    role = apikeys.parse_role(req_str(body, "role"))
    info, key = await apikeys.create_api_key(
        db, actor, name=req_str(body, "name"), role=role, now=now
    )
    return web.json_response({**ser.api_key_json(info), "key": key}, status=201)


async def revoke_api_key(request: web.Request) -> web.Response:
    db, actor, now = _ctx(request)
    info = await apikeys.revoke_api_key(
        db, actor, request.match_info["key_id"], now=now
    )
    return web.json_response(ser.api_key_json(info))


async def list_audit(request: web.Request) -> web.Response:
    found = await audit.list_audit(request.app[DATABASE])
    return web.json_response({"audit": [ser.audit_json(a) for a in found]})


_V = "/api/v1"
ROUTES: tuple[Route, ...] = (
    Route("GET", f"{_V}/parameters", get_parameters, ALL_ROLES),
    Route("PUT", f"{_V}/parameters/{{name}}", set_parameter, _SA),
    Route("GET", f"{_V}/member-classes", list_member_classes, ALL_ROLES),
    Route("POST", f"{_V}/member-classes", add_member_class, _SA),
    Route("GET", f"{_V}/members", list_members, ALL_ROLES),
    Route("POST", f"{_V}/members", add_member, _RO),
    Route("POST", f"{_V}/subsystems", add_subsystem, _RO),
    Route("GET", f"{_V}/security-servers", list_servers, ALL_ROLES),
    Route("POST", f"{_V}/security-servers", add_server, _RO),
    Route("POST", f"{_V}/security-servers/auth-certs", add_auth_cert, _RO),
    Route("POST", f"{_V}/security-servers/clients", add_server_client, _RO),
    Route("GET", f"{_V}/global-groups", list_groups, ALL_ROLES),
    Route("POST", f"{_V}/global-groups", add_group, _RO),
    Route("POST", f"{_V}/global-groups/members", add_group_member, _RO),
    Route("GET", f"{_V}/approved-cas", list_cas, ALL_ROLES),
    Route("POST", f"{_V}/approved-cas", add_ca, _SO),
    Route("GET", f"{_V}/approved-tsas", list_tsas, ALL_ROLES),
    Route("POST", f"{_V}/approved-tsas", add_tsa, _SO),
    Route("GET", f"{_V}/member-requests", list_member_requests, _RO),
    Route("POST", f"{_V}/member-requests/{{id}}/approve", approve_member_request, _RO),
    Route("POST", f"{_V}/member-requests/{{id}}/decline", decline_member_request, _RO),
    Route("GET", f"{_V}/certificate-requests", list_cert_requests, _RO | _SO),
    Route(
        "POST",
        f"{_V}/certificate-requests/{{id}}/approve",
        approve_cert_request,
        _RO | _SO,
    ),
    Route(
        "POST",
        f"{_V}/certificate-requests/{{id}}/decline",
        decline_cert_request,
        _RO | _SO,
    ),
    Route("GET", f"{_V}/api-keys", list_api_keys, _SA),
    Route("POST", f"{_V}/api-keys", create_api_key, _SA),
    Route("DELETE", f"{_V}/api-keys/{{key_id}}", revoke_api_key, _SA),
    Route("GET", f"{_V}/audit", list_audit, _SO | _SA),
    *MANAGEMENT_ROUTES,
)
