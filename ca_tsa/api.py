"""The enrolment HTTP API: the central server forwards approved CSRs here.

Routes (all JSON; errors are RFC 9457 ``application/problem+json`` documents
with ``type``, ``title``, ``status``, ``detail`` and ``code``)::

    POST /api/v1/certificates                 issue      (Bearer API key)
    GET  /api/v1/certificates                 list       (Bearer API key)
    GET  /api/v1/certificates/{serial}        one        (Bearer API key)
    POST /api/v1/certificates/{serial}/revoke revoke     (Bearer API key)
    GET  /api/v1/ca-certificates              public CA chain, OCSP and TSA certs

The API key is read from ``api.api_key_file`` at start-up and compared in
constant time (RFC 6750 bearer tokens). Request bodies above
``api.max_request_bytes`` are refused with 413 before being parsed.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jplink.errors import InvalidRequest, JPLinkError
from jplink.security.certs import MemberSubject

from . import service
from .appkeys import CONFIG, DATABASE, MATERIAL
from .home import read_api_key
from .repositories import CertificateRecord

__all__ = ["API_KEY", "problem_middleware", "problem_response", "setup_enrolment"]

log = logging.getLogger(__name__)

#: The enrolment API key, read from ``api.api_key_file`` at start-up.
API_KEY = web.AppKey("ca_api_key", str)

PROBLEM_JSON = "application/problem+json"
_HTTP_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "RequestTooLarge",
    415: "UnsupportedMediaType",
}
_ENROL_FIELDS = frozenset(
    {
        "csr",
        "profile",
        "instance",
        "member_class",
        "member_code",
        "member_name",
        "server_code",
    }
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An RFC 9457 problem document."""
    body = {
        "type": f"urn:jplink:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **(extra or {}),
    }
    return web.Response(
        status=status, text=json.dumps(body), content_type=PROBLEM_JSON, headers=headers
    )


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Turn every error into a problem response; never leak a traceback."""
    try:
        return await handler(request)
    except JPLinkError as exc:
        extra = {"errors": exc.detail} if exc.detail else None
        return problem_response(
            exc.http_status, exc.code, type(exc).__name__, exc.message, extra=extra
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "HttpError")
        return problem_response(exc.status, code, exc.reason, exc.reason)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return problem_response(
            500, "InternalError", "Internal error", "The server failed; see its log"
        )


def _unauthorized(detail: str, error: str | None) -> web.Response:
    challenge = 'Bearer realm="jplink-ca"'
    if error:
        challenge += f', error="{error}"'
    return problem_response(
        401,
        "Unauthorized",
        "Unauthorized",
        detail,
        headers={"WWW-Authenticate": challenge},
    )


def _authenticated(handler: Handler) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("A Bearer API key is required", None)
        # Constant-time comparison: the time taken must not reveal a prefix.
        expected = request.app[API_KEY].encode()
        if not hmac.compare_digest(token.strip().encode(), expected):
            return _unauthorized("The API key is not valid", "invalid_token")
        return await handler(request)

    return wrapper


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _cert_json(rec: CertificateRecord, *, pem: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "serial": rec.serial_hex,
        "subject": rec.subject,
        "profile": rec.profile.value,
        "member_id": rec.member_id,
        "server_code": rec.server_code,
        "not_before": _iso(rec.not_before),
        "not_after": _iso(rec.not_after),
        "issued_at": _iso(rec.issued_at),
        "status": rec.status.value,
        "revoked_at": _iso(rec.revoked_at),
        "revocation_reason": rec.reason.value if rec.reason else None,
        "sha256": rec.sha256,
    }
    if pem:
        data["certificate"] = rec.certificate().public_bytes(Encoding.PEM).decode()
    return data


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()  # 413 above client_max_size
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            "The request body is not JSON", code="InvalidJson"
        ) from exc
    if not isinstance(body, dict):
        raise InvalidRequest(
            "The request body must be a JSON object", code="InvalidJson"
        )
    return body


def _field(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(
            f"Field {name!r} must be a non-empty string", code="InvalidField"
        )
    return value


def _req(body: Mapping[str, Any], name: str) -> str:
    value = _field(body, name)
    assert value is not None
    return value


async def issue(request: web.Request) -> web.Response:
    """POST /api/v1/certificates -> 201 with the PEM certificate and serial."""
    body = await _json_body(request)
    unknown = sorted(set(body) - _ENROL_FIELDS)
    if unknown:
        raise InvalidRequest(
            f"Unknown field(s): {', '.join(unknown)}", code="InvalidField"
        )
    enrolment = service.EnrolmentRequest(
        csr=_req(body, "csr").encode(),
        profile=service.parse_profile(_req(body, "profile")),
        subject=MemberSubject(
            instance=_req(body, "instance"),
            member_class=_req(body, "member_class"),
            member_code=_req(body, "member_code"),
            member_name=_req(body, "member_name"),
            server_code=_field(body, "server_code", required=False),
        ),
    )
    app = request.app
    record = await service.issue_certificate(
        app[DATABASE],
        app[CONFIG],
        app[MATERIAL],
        enrolment,
        now=dt.datetime.now(dt.UTC),
    )
    data = _cert_json(record, pem=True)
    data["chain"] = [c.public_bytes(Encoding.PEM).decode() for c in app[MATERIAL].chain]
    return web.json_response(
        data,
        status=201,
        headers={"Location": f"/api/v1/certificates/{record.serial_hex}"},
    )


def _int_query(request: web.Request, name: str, default: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not 0 <= int(text) <= high:
        raise InvalidRequest(
            f"Query {name!r} must be an integer 0..{high}", code="InvalidQuery"
        )
    return int(text)


async def list_all(request: web.Request) -> web.Response:
    """GET /api/v1/certificates[?member_id=&limit=&offset=]."""
    records = await service.list_certificates(
        request.app[DATABASE],
        member_id=request.query.get("member_id"),
        limit=_int_query(request, "limit", 1000, 1000),
        offset=_int_query(request, "offset", 0, 2**31),
    )
    return web.json_response(
        {"certificates": [_cert_json(r, pem=False) for r in records]}
    )


async def get_one(request: web.Request) -> web.Response:
    """GET /api/v1/certificates/{serial}."""
    serial = service.parse_serial(request.match_info["serial"])
    record = await service.get_certificate(request.app[DATABASE], serial)
    return web.json_response(_cert_json(record, pem=True))


async def revoke(request: web.Request) -> web.Response:
    """POST /api/v1/certificates/{serial}/revoke {"reason": "keyCompromise"}."""
    serial = service.parse_serial(request.match_info["serial"])
    body = await _json_body(request)
    unknown = sorted(set(body) - {"reason"})
    if unknown:
        raise InvalidRequest(
            f"Unknown field(s): {', '.join(unknown)}", code="InvalidField"
        )
    reason = service.parse_reason(
        _field(body, "reason", required=False) or "unspecified"
    )
    record = await service.revoke_certificate(
        request.app[DATABASE], serial, reason, now=dt.datetime.now(dt.UTC)
    )
    return web.json_response(_cert_json(record, pem=False))


async def ca_certificates(request: web.Request) -> web.Response:
    """GET /api/v1/ca-certificates: the public chain (no authentication)."""
    material = request.app[MATERIAL]

    def pem(cert: x509.Certificate) -> str:
        return cert.public_bytes(Encoding.PEM).decode()

    return web.json_response(
        {
            "chain": [pem(c) for c in material.chain],
            "root": pem(material.root_cert),
            "ocsp_responder": pem(material.ocsp_cert),
            "tsa": pem(material.tsa_cert),
            "ocsp_url": request.app[CONFIG].ocsp.url,
        }
    )


async def _load_api_key(app: web.Application) -> AsyncIterator[None]:
    app[API_KEY] = read_api_key(app[CONFIG])
    yield


def setup_enrolment(app: web.Application) -> None:
    """Add the enrolment routes and read the API key at start-up.

    Requires ``app[CONFIG]`` now and ``app[DATABASE]``/``app[MATERIAL]`` at
    start-up (see :func:`ca_tsa.app.base_app`).
    """
    app.cleanup_ctx.append(_load_api_key)
    app.router.add_post("/api/v1/certificates", _authenticated(issue))
    app.router.add_get("/api/v1/certificates", _authenticated(list_all))
    app.router.add_get("/api/v1/certificates/{serial}", _authenticated(get_one))
    app.router.add_post("/api/v1/certificates/{serial}/revoke", _authenticated(revoke))
    app.router.add_get("/api/v1/ca-certificates", ca_certificates)
