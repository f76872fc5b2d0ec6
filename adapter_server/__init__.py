"""The adapter server: registered SQL statements become X-Road services.

A data provider registers a database connection and the SQL it is willing to
answer; the adapter publishes each statement as a SOAP service (with a
generated WSDL) and a REST service (with an OpenAPI document) that the
provider's security server exposes to the network.
"""

from __future__ import annotations

from .config import AdapterConfig, load_adapter_config
from .definitions import (
    ColumnSpec,
    DataSourceDefinition,
    ParameterSpec,
    ParamType,
    ServiceDefinition,
)
from .registry import Catalog, Registry

__all__ = [
    "AdapterConfig",
    "Catalog",
    "ColumnSpec",
    "DataSourceDefinition",
    "ParamType",
    "ParameterSpec",
    "Registry",
    "ServiceDefinition",
    "load_adapter_config",
]
