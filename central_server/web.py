"""HTTP plumbing shared by the admin and registration apps.

Errors become RFC 9457 ``application/problem+json`` documents in one
middleware; request bodies are read through :func:`json_body` and fields
through the small typed getters, so handlers stay thin.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from jplink.errors import InvalidRequest, JPLinkError

__all__ = [
    "PROBLEM_JSON",
    "json_body",
    "opt_str",
    "problem_middleware",
    "problem_response",
    "req_str",
    "request_id",
]

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
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
    """An RFC 9457 problem document with our ``code``."""
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
        headers = {"WWW-Authenticate": 'Bearer realm="jplink-central"'}
        return problem_response(
            exc.http_status,
            exc.code,
            type(exc).__name__,
            exc.message,
            extra={"errors": exc.detail} if exc.detail else None,
            headers=headers if exc.http_status == 401 else None,
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(exc.status, f"Http{exc.status}", exc.reason, exc.reason)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return problem_response(
            500, "InternalError", "Internal error", "The server failed; see its log"
        )


async def json_body(request: web.Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The request's JSON object, refusing unknown fields.

    Raises:
        InvalidRequest: not JSON, not an object, or unknown fields.
    """
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            "The request body is not JSON", code="InvalidJson"
        ) from exc
    if not isinstance(body, dict):
        raise InvalidRequest(
            "The request body must be a JSON object", code="InvalidJson"
        )
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequest(
            f"Unknown field(s): {', '.join(unknown)}", code="InvalidField"
        )
    return body


def opt_str(body: Mapping[str, Any], name: str) -> str | None:
    """An optional string field.

    Raises:
        InvalidRequest: present but not a string.
    """
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"Field {name!r} must be a string", code="InvalidField")
    return value


def req_str(body: Mapping[str, Any], name: str) -> str:
    """A required string field.

    Raises:
        InvalidRequest: missing or not a string.
    """
    value = opt_str(body, name)
    if value is None:
        raise InvalidRequest(f"Field {name!r} is required", code="InvalidField")
    return value


def request_id(request: web.Request) -> int:
    """The ``{id}`` path segment as a positive integer.

    Raises:
        InvalidRequest: not a positive decimal integer.
    """
    text = request.match_info["id"]
    if not text.isdecimal() or not 0 < int(text) < 2**31:
        raise InvalidRequest(f"Invalid request id {text!r}")
    return int(text)
