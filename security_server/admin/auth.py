"""Admin API authentication and role checks, fail closed.

Every route is declared with the roles allowed to call it (:class:`Route`,
registered by :func:`add_routes`). The middleware looks the matched route up
in that table: a route missing from it is refused for everybody, so a route
added without roles can never open an endpoint.

A key is presented as X-Road's ``Authorization: X-Road-ApiKey token=<key>``
or as ``Authorization: Bearer <key>`` (RFC 6750 §2.1). No key, an unknown or
revoked key: 401; a valid key without an allowed role: 403.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from jplink.errors import AccessDenied, Unauthenticated
from jplink.web import Handler

from .apikeys import Principal, authenticate
from .appkeys import DATABASE, PRINCIPAL, ROUTE_ROLES
from .roles import Role

__all__ = ["Route", "add_routes", "auth_middleware", "presented_key", "principal"]

_XROAD_SCHEME = "x-road-apikey"


@dataclass(frozen=True, slots=True)
class Route:
    """An admin endpoint and the roles allowed to call it."""

    method: str
    path: str
    handler: Handler
    roles: frozenset[Role]


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    """Register routes and their roles on ``app``.

    Raises:
        ValueError: a route without roles, or declared twice (programmer
            misuse).
    """
    table = app.setdefault(ROUTE_ROLES, {})
    for route in routes:
        if not route.roles:
            raise ValueError(f"{route.method} {route.path} has no roles")
        if (route.method, route.path) in table:
            raise ValueError(f"{route.method} {route.path} is declared twice")
        app.router.add_route(route.method, route.path, route.handler)
        table[(route.method, route.path)] = route.roles


def presented_key(request: web.Request) -> str:
    """The API key of the ``Authorization`` header.

    Accepts ``X-Road-ApiKey token=<key>`` (X-Road's form) and
    ``Bearer <key>``.

    Raises:
        Unauthenticated: no header, another scheme, or an empty key.
    """
    scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
    rest = rest.strip()
    if scheme.lower() == _XROAD_SCHEME:
        name, sep, token = rest.partition("=")
        if sep and name.strip().lower() == "token" and token.strip():
            return token.strip()
    elif scheme.lower() == "bearer" and rest:
        return rest
    raise Unauthenticated(
        "An API key is required (Authorization: X-Road-ApiKey token=<key>)"
    )


def principal(request: web.Request) -> Principal:
    """The authenticated caller (set by :func:`auth_middleware`)."""
    return request[PRINCIPAL]


def _roles_for(request: web.Request) -> frozenset[Role]:
    route = request.match_info.route
    resource = route.resource
    path = resource.canonical if resource is not None else ""
    return request.app[ROUTE_ROLES].get((route.method, path), frozenset())


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate the caller and check its roles before any handler runs.

    Raises:
        Unauthenticated: no, malformed, unknown or revoked key (401).
        AccessDenied: none of the key's roles may call this route (403).
    """
    caller = await authenticate(request.app[DATABASE], presented_key(request))
    if request.match_info.http_exception is not None:
        # Unknown path or method: 404/405, but only to a valid key.
        return await handler(request)
    allowed = _roles_for(request)
    if not caller.roles & allowed:
        raise AccessDenied(
            f"The API key's roles may not call {request.method} {request.path}",
            code="Forbidden",
        )
    request[PRINCIPAL] = caller
    return await handler(request)
