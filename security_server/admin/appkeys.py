"""Typed aiohttp application and request keys of the admin API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import aiohttp
from aiohttp import web

from jplink.storage import Database

from ..config import SecurityServerConfig
from .apikeys import Principal
from .roles import Role
from .runtime import ServerRuntime

__all__ = [
    "CLOCK",
    "CONFIG",
    "DATABASE",
    "HTTP",
    "PRINCIPAL",
    "ROUTE_ROLES",
    "RUNTIME",
]

CONFIG = web.AppKey("config", SecurityServerConfig)
DATABASE = web.AppKey("database", Database)
#: The token login and exchange state shared with ``jplink ss serve``.
RUNTIME = web.AppKey("runtime", ServerRuntime)
#: Outbound HTTP (WSDL downloads, TSA checks).
HTTP = web.AppKey("http", aiohttp.ClientSession)
#: The time source (tests pin it).
CLOCK: web.AppKey[Callable[[], dt.datetime]] = web.AppKey("clock")
#: (method, canonical path) -> roles allowed; read by the auth middleware.
ROUTE_ROLES = web.AppKey("route_roles", dict[tuple[str, str], frozenset[Role]])
#: The authenticated caller of a request.
PRINCIPAL = web.RequestKey("principal", Principal)
