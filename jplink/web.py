"""Shared aiohttp helpers: problem responses, the error middleware, request
fields, API keys.

Every JP-LINK HTTP API answers errors the same way, as an RFC 9457 problem
document (``application/problem+json``)::

    {"type": "urn:jplink:problem:NotFound", "title": "NotFound", "status": 404,
     "detail": "No service with code 'x'", "code": "NotFound"}

``code`` is the :class:`~jplink.errors.JPLinkError` leaf code, so a client can
branch on it without parsing ``type``. :func:`make_problem_middleware` turns
every error a handler raises into such a document: a ``JPLinkError`` with its
``http_status`` and ``code``, an aiohttp ``HTTPException`` with a code named
after its status, and anything unexpected into an opaque 500 that carries only
a correlation id (the traceback goes to the log under the same id).

API keys and other bearer secrets are high-entropy random strings, stored only
as their SHA-256 (no stretching is needed for 256-bit secrets) and compared in
constant time; :func:`verify_secret` also spends the same time on an unknown
key, so timing reveals nothing about which keys exist.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from .errors import InvalidRequest, JPLinkError, Unauthenticated

__all__ = [
    "HTTP_PROBLEM_CODES",
    "PROBLEM_JSON",
    "Handler",
    "bearer_token",
    "hash_secret",
    "make_problem_middleware",
    "new_secret",
    "opt_str",
    "problem_from_error",
    "problem_middleware",
    "problem_response",
    "read_json_object",
    "req_str",
    "verify_secret",
]

log = logging.getLogger(__name__)

#: RFC 9457 §3: the media type of a problem document.
PROBLEM_JSON = "application/problem+json"

#: The ``code`` of a problem made from an aiohttp ``HTTPException``.
#: Statuses not listed get ``Http<status>``.
HTTP_PROBLEM_CODES: Mapping[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "RequestTooLarge",
    415: "UnsupportedMediaType",
}

#: An aiohttp request handler.
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_UNEXPECTED_DETAIL = (
    "The server failed; its operator can find the cause in the log under "
    "correlation id {}"
)


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An RFC 9457 problem document.

    Args:
        status: the HTTP status (also the document's ``status`` member).
        code: our leaf code; ``type`` becomes ``urn:jplink:problem:<code>``.
        title: a short summary of the problem type.
        detail: a sentence about this occurrence (never a stack trace).
        extra: extension members (RFC 9457 §3.2), e.g. ``errors``.
        headers: extra response headers (``WWW-Authenticate``, ``Allow``).

    Returns:
        The response, ``Content-Type: application/problem+json``.

    Raises:
        ValueError: ``status`` is not an error status (programmer misuse).
    """
    if not 400 <= status <= 599:
        raise ValueError(f"a problem needs an error status, not {status}")
    body = {
        "type": f"urn:jplink:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **(extra or {}),
    }
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_from_error(
    exc: JPLinkError,
    *,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The problem document of a :class:`~jplink.errors.JPLinkError`.

    The status is the error's ``http_status``, ``code`` its code, ``title`` its
    class name and ``detail`` its message; a non-empty ``exc.detail`` becomes
    the ``errors`` member.

    Args:
        exc: the error.
        extra: further extension members.
        headers: extra response headers.

    Returns:
        The problem response.
    """
    members: dict[str, Any] = {"errors": exc.detail} if exc.detail else {}
    members.update(extra or {})
    return problem_response(
        exc.http_status,
        exc.code,
        type(exc).__name__,
        exc.message,
        extra=members or None,
        headers=headers,
    )


def _challenge(request: web.Request, realm: str) -> str:
    # RFC 6750 §3.1: "If the request lacks any authentication information
    # ..., the resource server SHOULD NOT include an error code"; a token that
    # was presented and refused is "invalid_token".
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    challenge = f'Bearer realm="{realm}"'
    if scheme.lower() == "bearer" and token.strip():
        challenge += ', error="invalid_token"'
    return challenge


def make_problem_middleware(*, bearer_realm: str = "jplink") -> Middleware:
    """An error middleware answering every failure with a problem document.

    - :class:`~jplink.errors.JPLinkError`: its ``http_status`` and ``code``;
      a 401 carries ``WWW-Authenticate: Bearer realm=...`` (RFC 6750 §3). A
      5xx one is logged with a correlation id that the document repeats.
    - aiohttp ``HTTPException`` of 400 or more: its status, a code from
      :data:`HTTP_PROBLEM_CODES` (``Http<status>`` otherwise), its ``Allow``
      header kept. Redirects and successes pass through untouched.
    - Anything else: 500 ``InternalError`` whose body holds only a
      correlation id; the exception and traceback are logged under that id.

    Args:
        bearer_realm: the realm named in ``WWW-Authenticate`` challenges.

    Returns:
        The middleware; put it first (outermost) in ``middlewares``.
    """

    @web.middleware
    async def problem_middleware(
        request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except JPLinkError as exc:
            headers: dict[str, str] = {}
            extra: dict[str, Any] = {}
            if exc.http_status == 401:
                headers["WWW-Authenticate"] = _challenge(request, bearer_realm)
            if exc.http_status >= 500:
                correlation = str(uuid.uuid4())
                extra["correlation_id"] = correlation
                log.warning(
                    "%s %s failed: %s (correlation id %s)",
                    request.method,
                    request.path,
                    exc.code,
                    correlation,
                )
            return problem_from_error(exc, extra=extra, headers=headers or None)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = HTTP_PROBLEM_CODES.get(exc.status, f"Http{exc.status}")
            kept = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            if exc.status == 401:
                kept["WWW-Authenticate"] = _challenge(request, bearer_realm)
            return problem_response(
                exc.status, code, exc.reason, exc.reason, headers=kept or None
            )
        except Exception:
            correlation = str(uuid.uuid4())
            log.exception(
                "unexpected error in %s %s (correlation id %s)",
                request.method,
                request.path,
                correlation,
            )
            return problem_response(
                500,
                "InternalError",
                "Internal error",
                _UNEXPECTED_DETAIL.format(correlation),
                extra={"correlation_id": correlation},
            )

    return problem_middleware


#: The error middleware with the default realm ``jplink``.
problem_middleware: Middleware = make_problem_middleware()


async def read_json_object(
    request: web.Request,
    *,
    allowed: frozenset[str] | None = None,
    empty_is_object: bool = True,
) -> dict[str, Any]:
    """The request body as a JSON object.

    The body size is already bounded by the application's
    ``client_max_size``: a larger body raises aiohttp's 413, which the
    problem middleware answers as ``RequestTooLarge``.

    Args:
        request: the request.
        allowed: the accepted member names; ``None`` accepts any.
        empty_is_object: an empty (or all-blank) body means ``{}``; if false
            it is refused as not JSON.

    Returns:
        The decoded object.

    Raises:
        InvalidRequest: ``InvalidJson`` (not JSON, not UTF-8, not an object)
            or ``InvalidField`` (a member outside ``allowed``).
    """
    raw = await request.read()
    if not raw.strip() and empty_is_object:
        body: Any = {}
    else:
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
    if allowed is not None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise InvalidRequest(
                f"Unknown field(s): {', '.join(unknown)}", code="InvalidField"
            )
    return body


def opt_str(body: Mapping[str, Any], name: str) -> str | None:
    """An optional string field of a JSON request body.

    Raises:
        InvalidRequest: code ``InvalidField`` when present but not a string.
    """
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"Field {name!r} must be a string", code="InvalidField")
    return value


def req_str(body: Mapping[str, Any], name: str, *, allow_empty: bool = False) -> str:
    """A required string field of a JSON request body.

    Args:
        body: the decoded request object.
        name: the field.
        allow_empty: accept ``""`` (for callers that check the text later).

    Raises:
        InvalidRequest: code ``InvalidField`` when missing, not a string, or
            empty unless ``allow_empty``.
    """
    value = opt_str(body, name)
    if value is None or (not value and not allow_empty):
        raise InvalidRequest(f"Field {name!r} is required", code="InvalidField")
    return value


def bearer_token(request: web.Request) -> str:
    """The token of ``Authorization: Bearer <token>`` (RFC 6750 §2.1).

    Returns:
        The token, without surrounding blanks.

    Raises:
        Unauthenticated: no ``Authorization`` header, another scheme, or an
            empty token.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("An API key is required (Authorization: Bearer <key>)")
    return token.strip()


def new_secret() -> str:
    """A fresh URL-safe random secret with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The lowercase hex SHA-256 of ``secret`` (UTF-8), stored in its place."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# Compared against when no hash is stored for the presented key, so an
# unknown key and a wrong one take the same time.
_DUMMY_HASH = hash_secret("jplink-no-such-secret")


def verify_secret(presented: str, stored_hash: str | None) -> None:
    """Check a presented secret against its stored SHA-256, in constant time.

    Args:
        presented: the secret as the caller sent it.
        stored_hash: the hex SHA-256 on file, or ``None`` when the caller's
            key id is unknown (a dummy hash is compared instead, taking the
            same time).

    Raises:
        Unauthenticated: no stored hash, or the hashes differ. The message is
            the same for both, so a caller learns nothing about which.
    """
    expected = stored_hash if stored_hash is not None else _DUMMY_HASH
    same = hmac.compare_digest(
        hash_secret(presented).encode("ascii"), expected.lower().encode("utf-8")
    )
    if stored_hash is None or not same:
        raise Unauthenticated("The API key is not valid")
