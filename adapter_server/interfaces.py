"""Registered services described as WSDL and OpenAPI (via the ``wsdl`` package).

The REST routes answer errors with RFC 9457 problem documents
(:mod:`jplink.web`), so the OpenAPI document's ``Problem`` schema and error
responses are set here to that shape and media type.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jplink.web import PROBLEM_JSON
from wsdl import WsdlField, WsdlOperation, WsdlSpec, XsdType, build_wsdl
from wsdl.openapi import build_openapi

from .config import AdapterConfig
from .definitions import ParamType, ServiceDefinition

__all__ = ["PROBLEM_SCHEMA", "subsystem_openapi", "subsystem_spec", "subsystem_wsdl"]

#: RFC 9457 §3.1 members plus our ``code``; ``errors`` carries machine-readable
#: facts when there are any, ``correlation_id`` comes with 5xx answers.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {"type": "object"},
        "correlation_id": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail", "code"],
}
_ERRORS = {
    "400": "Invalid parameters or body",
    "404": "Unknown or disabled service",
    "500": "The adapter failed (value does not fit its column, internal error)",
    "503": "Database unavailable, or the query timed out",
}

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
    """The OpenAPI 3.1 document of one subsystem, with problem+json errors."""
    document = build_openapi(
        subsystem_spec(config, subsystem, services), config.public_url.rstrip("/")
    )
    document["components"]["schemas"]["Problem"] = PROBLEM_SCHEMA
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for path in document["paths"].values():
        responses = path["post"]["responses"]
        for status in [s for s in responses if not s.startswith("2")]:
            del responses[status]
        for status, text in _ERRORS.items():
            responses[status] = {
                "description": text,
                "content": {PROBLEM_JSON: problem},
            }
    return document
