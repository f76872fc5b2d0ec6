"""The public registration endpoint (port 4001).

Anyone may submit a member-code request or a CSR request; the answer (201)
carries the request id and a secret token, shown once. Reading a request's
state needs both: ``GET .../{id}`` with ``Authorization: Bearer <token>``
(RFC 6750 §2.1; tokens never go into URLs, which end up in logs). A wrong
token and an unknown id give the same 404.
"""

from __future__ import annotations

from aiohttp import web

from jplink.errors import Unauthenticated
from jplink.identifiers import parse_client_id

from . import cert_requests, member_requests, registry
from . import serialize as ser
from .appkeys import CLOCK, DATABASE
from .member_requests import SubmittedRequest
from .web import json_body, opt_str, req_str, request_id

__all__ = ["PUBLIC_ROUTES", "add_public_routes"]

_P = "/register/v1"


def _token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Give the request token as Authorization: Bearer <token>")
    return token.strip()


def _submitted(sub: SubmittedRequest, kind: str) -> web.Response:
    return web.json_response(
        {"id": sub.id, "token": sub.token},
        status=201,
        headers={"Location": f"{_P}/{kind}/{sub.id}"},
    )


async def member_classes(request: web.Request) -> web.Response:
    """GET the member classes a request may name."""
    return web.json_response(await registry.list_member_classes(request.app[DATABASE]))


async def submit_member_request(request: web.Request) -> web.Response:
    """POST a member-code request -> 201 {id, token}."""
    fields = {
        "adminEmail",
        "organisationName",
        "memberClass",
        "memberCode",
        "extraInfo",
    }
    body = await json_body(request, frozenset(fields))
    sub = await member_requests.submit_member_request(
        request.app[DATABASE],
        admin_email=req_str(body, "adminEmail"),
        organisation_name=req_str(body, "organisationName"),
        member_class=req_str(body, "memberClass"),
        requested_code=opt_str(body, "memberCode"),
        extra_info=opt_str(body, "extraInfo") or "",
        now=request.app[CLOCK](),
    )
    return _submitted(sub, "member-requests")


async def member_request_state(request: web.Request) -> web.Response:
    """GET a member-code request's state (token required)."""
    view = await member_requests.member_request_status(
        request.app[DATABASE], request_id(request), _token(request)
    )
    return web.json_response(ser.member_request_public_json(view))


async def submit_cert_request(request: web.Request) -> web.Response:
    """POST a CSR request -> 201 {id, token}."""
    body = await json_body(request, frozenset({"usage", "member", "serverCode", "csr"}))
    sub = await cert_requests.submit_certificate_request(
        request.app[DATABASE],
        usage=cert_requests.parse_usage(req_str(body, "usage")),
        member=parse_client_id(req_str(body, "member")),
        server_code=opt_str(body, "serverCode"),
        csr_pem=req_str(body, "csr"),
        now=request.app[CLOCK](),
    )
    return _submitted(sub, "certificate-requests")


async def cert_request_state(request: web.Request) -> web.Response:
    """GET a CSR request's state and, once approved, its certificate."""
    view = await cert_requests.certificate_request_status(
        request.app[DATABASE], request_id(request), _token(request)
    )
    return web.json_response(ser.cert_request_public_json(view))


#: Every public route; nothing else is served by the registration app.
PUBLIC_ROUTES = (
    ("GET", f"{_P}/member-classes", member_classes),
    ("POST", f"{_P}/member-requests", submit_member_request),
    ("GET", f"{_P}/member-requests/{{id}}", member_request_state),
    ("POST", f"{_P}/certificate-requests", submit_cert_request),
    ("GET", f"{_P}/certificate-requests/{{id}}", cert_request_state),
)


def add_public_routes(app: web.Application) -> None:
    """Register :data:`PUBLIC_ROUTES` on ``app``."""
    for method, path, handler in PUBLIC_ROUTES:
        app.router.add_route(method, path, handler)
