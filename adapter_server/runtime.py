"""Running a call: look the service up, bind the values, run, type the rows.

Shared by the SOAP and REST front ends, which differ only in how they read
parameters and write rows. The service catalogue is cached in memory and
reloaded every ``catalog_refresh_seconds`` so that changes made through the
CLI (another process) reach a running server without a restart; the admin API
refreshes it at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jplink.errors import InvalidRequest, NotFound

from .datasources import DataSourcePool
from .definitions import ServiceDefinition
from .registry import Catalog, Registry
from .values import bind_parameters

__all__ = ["CallResult", "CatalogCache", "check_offset", "find_service", "run_call"]

log = logging.getLogger(__name__)

#: Largest accepted ``pageOffset``: deeper paging should narrow the query.
MAX_OFFSET = 10_000_000


@dataclass(frozen=True, slots=True)
class CallResult:
    """The typed answer to one call.

    Attributes:
        service: the service that ran.
        rows: the page's rows, in the order of ``service.columns``.
        next_offset: the ``pageOffset`` of the next page, or ``None``.
    """

    service: ServiceDefinition
    rows: Sequence[Sequence[Any]]
    next_offset: int | None


class CatalogCache:
    """The enabled services, reloaded from the store when older than ``ttl``."""

    def __init__(self, registry: Registry, ttl: float) -> None:
        self._registry = registry
        self._ttl = ttl
        self._catalog: Catalog | None = None
        self._loaded = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> Catalog:
        """The current catalogue (reloading it if stale).

        Raises:
            StorageError: the store cannot be read.
        """
        if self._catalog is None or time.monotonic() - self._loaded > self._ttl:
            async with self._lock:
                if self._catalog is None or time.monotonic() - self._loaded > self._ttl:
                    self._catalog = await self._registry.catalog()
                    self._loaded = time.monotonic()
        return self._catalog

    def invalidate(self) -> None:
        """Reload on the next call (after an admin change)."""
        self._catalog = None


def find_service(catalog: Catalog, code: str) -> ServiceDefinition:
    """An enabled service by code.

    Raises:
        NotFound: ``UnknownService``.
        InvalidRequest: ``ServiceDisabled``.
    """
    service = catalog.services.get(code)
    if service is None:
        raise NotFound(
            f"This adapter offers no service {code!r}", code="UnknownService"
        )
    if not service.enabled:
        raise InvalidRequest(
            f"Service {code!r} is disabled by its provider", code="ServiceDisabled"
        )
    return service


def check_offset(raw: object) -> int:
    """A caller's page offset.

    Raises:
        InvalidRequest: ``InvalidParameter`` for anything but 0..MAX_OFFSET.
    """
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_OFFSET:
        raise InvalidRequest(
            f"pageOffset must be an integer between 0 and {MAX_OFFSET}",
            code="InvalidParameter",
        )
    return raw


async def run_call(
    catalog: Catalog,
    pool: DataSourcePool,
    service: ServiceDefinition,
    supplied: Mapping[str, object],
    offset: int = 0,
) -> CallResult:
    """Bind the caller's values and run the service's statement.

    Args:
        catalog: the catalogue snapshot (for the service's data source).
        pool: the data-source engines.
        service: the enabled service called.
        supplied: parameter name -> raw value.
        offset: the page offset (read-only services).

    Returns:
        The page of rows and the next offset.

    Raises:
        InvalidRequest: a missing, unknown or invalid parameter.
        StorageError: ``DatabaseUnavailable``, ``QueryTimeout``, ``QueryFailed``.
    """
    values = bind_parameters(service, supplied)
    source = catalog.sources[service.datasource]
    page = await pool.run(
        source,
        service.sql,
        values,
        read_only=service.read_only,
        limit=service.max_rows,
        offset=offset,
        paged=service.read_only,
    )
    next_offset = offset + len(page.rows) if page.has_more else None
    return CallResult(service, page.rows, next_offset)
