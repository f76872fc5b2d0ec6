"""HTTP plumbing shared by the admin and registration apps.

Errors become RFC 9457 ``application/problem+json`` documents in one
middleware (:mod:`jplink.web`, realm ``jplink-central``); request bodies are
read through :func:`json_body` and fields through the small typed getters, so
handlers stay thin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from jplink.errors import InvalidRequest
from jplink.web import (
    PROBLEM_JSON,
    Handler,
    make_problem_middleware,
    opt_str,
    problem_response,
    read_json_object,
)
from jplink.web import req_str as _req_str

__all__ = [
    "PROBLEM_JSON",
    "Handler",
    "json_body",
    "opt_str",
    "problem_middleware",
    "problem_response",
    "req_str",
    "request_id",
]

#: Errors become problem documents; 401s challenge with realm ``jplink-central``.
problem_middleware = make_problem_middleware(bearer_realm="jplink-central")


async def json_body(request: web.Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``), refusing unknown fields.

    Raises:
        InvalidRequest: not JSON, not an object, or unknown fields.
    """
    return await read_json_object(request, allowed=allowed)


def req_str(body: Mapping[str, Any], name: str) -> str:
    """A required string field (``""`` passes: the service checks the text).

    Raises:
        InvalidRequest: missing or not a string.
    """
    return _req_str(body, name, allow_empty=True)


def request_id(request: web.Request) -> int:
    """The ``{id}`` path segment as a positive integer.

    Raises:
        InvalidRequest: not a positive decimal integer.
    """
    text = request.match_info["id"]
    if not text.isdecimal() or not 0 < int(text) < 2**31:
        raise InvalidRequest(f"Invalid request id {text!r}")
    return int(text)
