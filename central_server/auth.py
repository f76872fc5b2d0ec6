"""Admin API authentication and role checks, fail closed.

Every admin route is declared with the roles allowed to call it
(:class:`Route`). The middleware looks the matched route up in that table:
a route missing from the table is refused for everybody, so forgetting to
declare roles can never open an endpoint. Keys come as
``Authorization: Bearer <key>`` (RFC 6750 §2.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from jplink.errors import AccessDenied
from jplink.web import Handler, bearer_token

from .apikeys import Role, authenticate
from .appkeys import DATABASE, PRINCIPAL

__all__ = ["ALL_ROLES", "ROUTE_ROLES", "Route", "add_routes", "auth_middleware"]

ALL_ROLES = frozenset(Role)


@dataclass(frozen=True, slots=True)
class Route:
    """An admin endpoint and the roles allowed to call it."""

    method: str
    path: str
    handler: Handler
    roles: frozenset[Role]


#: (method, path) -> roles, filled by :func:`add_routes`; read by the middleware.
ROUTE_ROLES = web.AppKey("route_roles", dict[tuple[str, str], frozenset[Role]])


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    """Register routes and their roles on ``app``."""
    table: dict[tuple[str, str], frozenset[Role]] = {}
    for route in routes:
        if not route.roles:
            raise ValueError(f"{route.method} {route.path} has no roles")
        app.router.add_route(route.method, route.path, route.handler)
        table[(route.method, route.path)] = route.roles
    app[ROUTE_ROLES] = table


def _roles_for(
    request: web.Request, table: dict[tuple[str, str], frozenset[Role]]
) -> frozenset[Role]:
    info = request.match_info.route.resource
    path = info.canonical if info is not None else ""
    method = request.match_info.route.method
    return table.get((method, path), frozenset())


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate the caller and check its role before any handler runs.

    Raises:
        Unauthenticated: no, malformed, unknown or revoked key (401).
        AccessDenied: the key's role may not call this route (403).
    """
    if request.match_info.http_exception is not None:
        # Unknown path or method: answer 404/405, but only to a valid key.
        await authenticate(request.app[DATABASE], bearer_token(request))
        return await handler(request)
    principal = await authenticate(request.app[DATABASE], bearer_token(request))
    allowed = _roles_for(request, request.app[ROUTE_ROLES])
    if principal.role not in allowed:
        raise AccessDenied(
            f"Role {principal.role.value} may not call {request.method} {request.path}"
        )
    request[PRINCIPAL] = principal
    return await handler(request)
