"""Small HTTP helpers of the admin handlers: JSON out, typed fields in.

Handlers stay thin: they read fields with the typed getters (each refuses a
wrong type with a 400 problem naming the field), call one service function
and answer with :func:`json_response`, which turns frozen results
(dataclasses, identifiers, enums, datetimes) into JSON. DER blobs are never
put into JSON; PEM documents have endpoints of their own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from aiohttp import web

from jplink.errors import Conflict, InvalidRequest, Unauthenticated
from jplink.identifiers import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    SecurityServerId,
    ServiceId,
)
from jplink.web import opt_str, req_str

from ..softtoken import UnlockedToken
from .appkeys import CLOCK, PRINCIPAL, RUNTIME
from .auth import principal

__all__ = [
    "actor",
    "client_from_path",
    "json_response",
    "jsonable",
    "now",
    "opt_bool",
    "opt_enum",
    "opt_number",
    "opt_str",
    "query_str",
    "req_str",
    "unlocked",
]

E = TypeVar("E", bound=enum.Enum)

_IDS = (ClientId, ServiceId, SecurityServerId, GlobalGroupId, LocalGroupId)


def jsonable(value: Any) -> Any:
    """A JSON-ready copy of a result (``bytes`` become ``None``)."""
    if isinstance(value, _IDS):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """``data`` as an ``application/json`` response."""
    return web.Response(
        status=status,
        text=json.dumps(jsonable(data), ensure_ascii=False),
        content_type="application/json",
    )


def now(request: web.Request) -> dt.datetime:
    """The current time from the app's clock."""
    return request.app[CLOCK]()


def actor(request: web.Request) -> str:
    """The audit-log actor of the request (the API key's name and id)."""
    return principal(request).actor if PRINCIPAL in request else "unknown"


def unlocked(request: web.Request) -> UnlockedToken:
    """The logged-in token of the serving process.

    Raises:
        Conflict: code ``TokenNotActive`` when nobody logged in (409, so a
            client does not mistake it for a refused API key).
    """
    try:
        return request.app[RUNTIME].login.unlocked()
    except Unauthenticated:
        raise Conflict(
            "The software token is not logged in (PUT /api/v1/tokens/0/login)",
            code="TokenNotActive",
        ) from None


def opt_bool(body: Mapping[str, Any], name: str) -> bool | None:
    """An optional boolean field.

    Raises:
        InvalidRequest: present but not a boolean.
    """
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise InvalidRequest(f"Field {name!r} must be true or false", code="InvalidField")


def opt_enum(body: Mapping[str, Any], name: str, kind: type[E]) -> E | None:
    """An optional field holding one of an enum's words.

    Raises:
        InvalidRequest: present but not one of the words.
    """
    value = body.get(name)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        words = ", ".join(str(m.value) for m in kind)
        raise InvalidRequest(
            f"Field {name!r} must be one of {words}", code="InvalidField"
        ) from None


def opt_number(body: Mapping[str, Any], name: str) -> float | None:
    """An optional number field.

    Raises:
        InvalidRequest: present but not a number.
    """
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"Field {name!r} must be a number", code="InvalidField")
    return float(value)


def query_str(request: web.Request, name: str) -> str:
    """A required query parameter.

    Raises:
        InvalidRequest: missing or empty.
    """
    value = request.query.get(name, "")
    if not value:
        raise InvalidRequest(
            f"Query parameter {name!r} is required", code="InvalidField"
        )
    return value


def client_from_path(request: web.Request, name: str = "client") -> ClientId:
    """A client id in X-Road's path form: ``INSTANCE:CLASS:CODE[:SUBSYSTEM]``.

    X-Road forbids ``:`` in identifier parts, so the form is unambiguous.

    Raises:
        InvalidRequest: code ``InvalidClientId`` for another number of parts
            or a part that breaks the identifier rules.
    """
    text = request.match_info[name]
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise InvalidRequest(
            f"{text!r} is not a client id (INSTANCE:CLASS:CODE[:SUBSYSTEM])",
            code="InvalidClientId",
        )
    return ClientId(*parts)
