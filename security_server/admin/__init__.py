"""The security server's admin REST API (port 4000): roles, API keys, routes.

See :mod:`.app` (the application), :mod:`.roles` (X-Road's roles),
:mod:`.apikeys` (keys bound to roles, stored hashed), :mod:`.auth` (the
fail-closed role check) and :mod:`.runtime` (what the API shares with the
serving process).
"""

from __future__ import annotations

from .apikeys import (
    ApiKeyInfo,
    Principal,
    authenticate,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from .app import ALL_ROUTES, make_admin_app
from .auth import Route
from .roles import ALL_ROLES, Role, parse_roles
from .runtime import ExchangeState, ExchangeStatus, ServerRuntime

__all__ = [
    "ALL_ROLES",
    "ALL_ROUTES",
    "ApiKeyInfo",
    "ExchangeState",
    "ExchangeStatus",
    "Principal",
    "Role",
    "Route",
    "ServerRuntime",
    "authenticate",
    "create_api_key",
    "list_api_keys",
    "make_admin_app",
    "parse_roles",
    "revoke_api_key",
]
