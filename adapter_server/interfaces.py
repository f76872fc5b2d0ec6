"""Registered services described as WSDL and OpenAPI (via the ``wsdl`` package)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wsdl import WsdlField, WsdlOperation, WsdlSpec, XsdType, build_wsdl
from wsdl.openapi import build_openapi

from .config import AdapterConfig
from .definitions import ParamType, ServiceDefinition

__all__ = ["subsystem_openapi", "subsystem_spec", "subsystem_wsdl"]

_XSD = {
    ParamType.STRING: XsdType.STRING,
    ParamType.INTEGER: XsdType.INTEGER,
    ParamType.DECIMAL: XsdType.DECIMAL,
    ParamType.BOOLEAN: XsdType.BOOLEAN,
    ParamType.DATE: XsdType.DATE,
    ParamType.DATETIME: XsdType.DATETIME,
}


def _operation(s: ServiceDefinition) -> WsdlOperation:
    return WsdlOperation(
        code=s.code,
        version=s.version,
        title=s.title,
        notes=s.notes,
        inputs=tuple(WsdlField(p.name, _XSD[p.type], p.required) for p in s.parameters),
        row=tuple(WsdlField(c.name, _XSD[c.type]) for c in s.columns),
        paged=s.read_only,
    )


def subsystem_spec(
    config: AdapterConfig, subsystem: str, services: Iterable[ServiceDefinition]
) -> WsdlSpec:
    """The description of one subsystem's enabled services."""
    ops = tuple(
        _operation(s) for s in services if s.subsystem == subsystem and s.enabled
    )
    return WsdlSpec(
        name=subsystem,
        namespace=config.namespace(subsystem),
        address=config.public_url.rstrip("/") + "/soap",
        operations=ops,
    )


def subsystem_wsdl(
    config: AdapterConfig, subsystem: str, services: Iterable[ServiceDefinition]
) -> bytes:
    """The WSDL of one subsystem."""
    return build_wsdl(subsystem_spec(config, subsystem, services))


def subsystem_openapi(
    config: AdapterConfig, subsystem: str, services: Iterable[ServiceDefinition]
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of one subsystem."""
    return build_openapi(
        subsystem_spec(config, subsystem, services), config.public_url.rstrip("/")
    )
