"""HTTP faces of the management services.

- The SOAP endpoint on the registration port (4001): ``POST /managementservice/``
  takes ``authCertReg`` (PR-MSERV §2.3: sent "directly via HTTPS"; in X-Road's
  layout, without the auth certificate's OCSP response, the status is fetched
  from the issuing CA's responder, see :mod:`.auth_cert_status`), and
  ``POST /managementservice/manage/`` the other operations (in X-Road they
  arrive through the management security server). Requests that do not
  verify or do not fit the registry are answered with a SOAP fault and stored
  nowhere.
- The admin routes (:data:`MANAGEMENT_ROUTES`) for the registration officer:
  list, approve, decline; auto-approval is a system administrator's switch.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiohttp import web

from jplink.errors import InvalidRequest, JPLinkError
from jplink.protocol import parse_soap_message
from jplink.protocol.faults import build_fault, fault_from_error
from jplink.protocol.management import (
    ManagementRequestType,
    auth_cert_status_query,
    build_management_response,
    verify_management_request,
)

from . import management
from .apikeys import Role
from .appkeys import CLOCK, DATABASE, OCSP_CLIENT, PRINCIPAL
from .auth import ALL_ROLES, Route
from .auth_cert_status import fetch_auth_cert_ocsp
from .management import ManagementRequestView
from .management_wsdl import MANAGEMENT_WSDL_PATH, management_wsdl
from .member_requests import RequestStatus
from .servers import auth_cert_hash
from .web import json_body, req_str, request_id

__all__ = [
    "MANAGEMENT_PATH",
    "MANAGEMENT_ROUTES",
    "REGISTRATION_PATH",
    "add_management_service_routes",
    "management_request_json",
]

log = logging.getLogger(__name__)

REGISTRATION_PATH = "/managementservice/"
MANAGEMENT_PATH = "/managementservice/manage/"
_TEXT_XML = "text/xml"


def _fault(err: JPLinkError) -> web.Response:
    # SOAP 1.1 §6.2: "In case of a SOAP error while processing the request,
    # the SOAP HTTP server MUST issue an HTTP 500 "Internal Server Error"
    # response and include a SOAP message in the response containing a SOAP
    # Fault element".
    prefix = "Client" if err.http_status < 500 else "Server"
    body = fault_from_error(err, prefix, detail=str(uuid.uuid4()))
    return web.Response(status=500, body=body, content_type=_TEXT_XML, charset="utf-8")


async def _serve(request: web.Request, *, registration: bool) -> web.Response:
    app = request.app
    try:
        data = await request.read()
        message = parse_soap_message(
            data, content_type=request.headers.get("Content-Type", "")
        )
        kind = message.service.service_code
        if (kind == ManagementRequestType.AUTH_CERT_REG.value) != registration:
            raise InvalidRequest(
                f"{kind} is not served at {request.path}", code="InvalidRequest"
            )
        db = app[DATABASE]
        trust, provider = await management.management_context(db)
        now = app[CLOCK]()
        # PR-MSERV §2.3 sends no OCSP response for the auth certificate; all
        # other proofs verify first, then the CA's responder is asked.
        query = auth_cert_status_query(
            message, service_provider=provider, trust=trust, now=now
        )
        auth_ocsp = None
        if query is not None:
            auth_ocsp = await fetch_auth_cert_ocsp(db, app[OCSP_CLIENT], query)
            now = app[CLOCK]()
        verified = verify_management_request(
            message,
            service_provider=provider,
            trust=trust,
            now=now,
            auth_cert_ocsp=auth_ocsp,
        )
        view = await management.submit_management_request(db, verified, now=now)
        answer = build_management_response(message, view.id if view else None)
    except JPLinkError as err:
        log.info("management request refused: %s: %s", err.code, err.message)
        return _fault(err)
    except Exception:
        log.exception("management request failed")
        body = build_fault("Server.InternalError", "The central server failed")
        return web.Response(
            status=500, body=body, content_type=_TEXT_XML, charset="utf-8"
        )
    return web.Response(body=answer, content_type=_TEXT_XML, charset="utf-8")


async def registration_service(request: web.Request) -> web.Response:
    """POST an ``authCertReg`` multipart -> response with requestId, or a fault."""
    return await _serve(request, registration=True)


async def management_service(request: web.Request) -> web.Response:
    """POST any other management request -> response with requestId, or a fault."""
    return await _serve(request, registration=False)


def add_management_service_routes(app: web.Application) -> None:
    """Register the two SOAP endpoints on the registration app."""
    app.router.add_post(REGISTRATION_PATH, registration_service)
    app.router.add_post(MANAGEMENT_PATH, management_service)
    app.router.add_get(MANAGEMENT_WSDL_PATH, management_wsdl)


def management_request_json(view: ManagementRequestView) -> dict[str, Any]:
    """The admin API's JSON for a stored management request."""
    req = view.request
    return {
        "id": view.id,
        "type": req.type.value,
        "status": view.status.value,
        "server": str(req.server),
        "client": str(req.client) if req.client else None,
        "address": req.address,
        "authCertHash": auth_cert_hash(req.auth_cert) if req.auth_cert else None,
        "subsystemName": req.subsystem_name,
        "message": req.message,
        "sender": view.sender,
        "messageId": view.message_id,
        "signer": view.signer,
        "autoApproved": view.auto_approved,
        "createdAt": view.created_at.isoformat(),
        "decidedAt": view.decided_at.isoformat() if view.decided_at else None,
        "decidedBy": view.decided_by,
        "declineReason": view.decline_reason,
    }


def _status(request: web.Request) -> RequestStatus | None:
    text = request.query.get("status")
    try:
        return RequestStatus(text) if text else None
    except ValueError:
        raise InvalidRequest(f"Unknown status {text!r}") from None


async def list_requests(request: web.Request) -> web.Response:
    found = await management.list_management_requests(
        request.app[DATABASE], status=_status(request)
    )
    return web.json_response(
        {"managementRequests": [management_request_json(v) for v in found]}
    )


async def approve_request(request: web.Request) -> web.Response:
    await json_body(request, frozenset())
    view = await management.approve_management_request(
        request.app[DATABASE],
        request[PRINCIPAL].actor,
        request_id(request),
        now=request.app[CLOCK](),
    )
    return web.json_response(management_request_json(view))


async def decline_request(request: web.Request) -> web.Response:
    body = await json_body(request, frozenset({"reason"}))
    view = await management.decline_management_request(
        request.app[DATABASE],
        request[PRINCIPAL].actor,
        request_id(request),
        req_str(body, "reason"),
        now=request.app[CLOCK](),
    )
    return web.json_response(management_request_json(view))


async def get_auto_approve(request: web.Request) -> web.Response:
    enabled = await management.get_auto_approve(request.app[DATABASE])
    return web.json_response({"enabled": enabled})


async def set_auto_approve(request: web.Request) -> web.Response:
    body = await json_body(request, frozenset({"enabled"}))
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise InvalidRequest("enabled must be true or false")
    await management.set_auto_approve(
        request.app[DATABASE],
        request[PRINCIPAL].actor,
        enabled,
        now=request.app[CLOCK](),
    )
    return web.json_response({"enabled": enabled})


_RO = frozenset({Role.REGISTRATION_OFFICER})
_SA = frozenset({Role.SYSTEM_ADMINISTRATOR})
_P = "/api/v1/management-requests"
#: Admin routes of the management requests (added to the admin ROUTES table).
MANAGEMENT_ROUTES: tuple[Route, ...] = (
    Route("GET", _P, list_requests, _RO),
    Route("POST", f"{_P}/{{id}}/approve", approve_request, _RO),
    Route("POST", f"{_P}/{{id}}/decline", decline_request, _RO),
    Route("GET", "/api/v1/management-auto-approve", get_auto_approve, ALL_ROLES),
    Route("PUT", "/api/v1/management-auto-approve", set_auto_approve, _SA),
)
