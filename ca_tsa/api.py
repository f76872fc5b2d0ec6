"""The enrolment HTTP API: the central server forwards approved CSRs here.

Routes (all JSON; errors are RFC 9457 ``application/problem+json`` documents
with ``type``, ``title``, ``status``, ``detail`` and ``code``)::

    POST /api/v1/certificates                 issue      (Bearer API key)
    GET  /api/v1/certificates                 list       (Bearer API key)
    GET  /api/v1/certificates/{serial}        one        (Bearer API key)
    POST /api/v1/certificates/{serial}/revoke revoke     (Bearer API key)
    GET  /api/v1/ca-certificates              public CA chain, OCSP and TSA certs

The API key is read from ``api.api_key_file`` at start-up, kept as its
SHA-256 and compared in constant time (RFC 6750 bearer tokens; see
:mod:`jplink.web`). Request bodies above ``api.max_request_bytes`` are refused
with 413 before being parsed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jplink.errors import InvalidRequest
from jplink.security.certs import MemberSubject
from jplink.web import (
    Handler,
    bearer_token,
    hash_secret,
    make_problem_middleware,
    problem_response,
    read_json_object,
    verify_secret,
)

from . import service
from .appkeys import CONFIG, DATABASE, MATERIAL
from .home import read_api_key
from .repositories import CertificateRecord

__all__ = [
    "API_KEY_HASH",
    "problem_middleware",
    "problem_response",
    "setup_enrolment",
]

#: SHA-256 (hex) of the enrolment API key read from ``api.api_key_file`` at
#: start-up; the key itself is not kept in memory by the app.
API_KEY_HASH = web.AppKey("ca_api_key_hash", str)

#: Errors become problem documents; 401s challenge with realm ``jplink-ca``.
problem_middleware = make_problem_middleware(bearer_realm="jplink-ca")

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


def _authenticated(handler: Handler) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        # Raises Unauthenticated (401) for a missing or wrong key; the
        # comparison is constant-time (jplink.web.verify_secret).
        verify_secret(bearer_token(request), request.app[API_KEY_HASH])
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


async def _json_body(request: web.Request, allowed: frozenset[str]) -> dict[str, Any]:
    # An empty body is not JSON here: every enrolment route needs a body.
    return await read_json_object(request, allowed=allowed, empty_is_object=False)


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
    body = await _json_body(request, _ENROL_FIELDS)
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
    body = await _json_body(request, frozenset({"reason"}))
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
    app[API_KEY_HASH] = hash_secret(read_api_key(app[CONFIG]))
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
