"""Typed aiohttp application keys of the adapter server."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .config import AdapterConfig
from .datasources import DataSourcePool
from .registry import Registry
from .runtime import CatalogCache

__all__ = ["CONFIG", "SERVICE_CODE", "STATE", "AdapterState"]


@dataclass(frozen=True, slots=True)
class AdapterState:
    """What the app opens at start-up and closes at shutdown."""

    registry: Registry
    pool: DataSourcePool
    cache: CatalogCache


CONFIG = web.AppKey("config", AdapterConfig)
STATE = web.AppKey("state", AdapterState)
#: The service code a request addresses, for the failure log line.
SERVICE_CODE = web.RequestKey("service_code", str)
