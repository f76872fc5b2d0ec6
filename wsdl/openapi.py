"""OpenAPI 3.1 for the REST face of the same operations a WSDL describes.

``POST /rest/{serviceCode}`` takes a JSON object of parameters (and an
optional ``offset`` query parameter) and answers ``{"rows": [...], "next":
<offset or null>}``. Errors are ``{"type", "message", "detail"}`` problems, the
shape X-Road's REST protocol uses.
"""

from __future__ import annotations

from typing import Any

from .generate import WsdlField, WsdlSpec, XsdType

__all__ = ["build_openapi"]

_JSON_TYPES: dict[XsdType, dict[str, Any]] = {
    XsdType.STRING: {"type": "string"},
    XsdType.INTEGER: {"type": "integer", "format": "int64"},
    # Decimals travel as strings in responses to stay exact; requests accept both.
    XsdType.DECIMAL: {"type": ["string", "number"], "format": "decimal"},
    XsdType.BOOLEAN: {"type": "boolean"},
    XsdType.DATE: {"type": "string", "format": "date"},
    XsdType.DATETIME: {"type": "string", "format": "date-time"},
}


def _object(fields: tuple[WsdlField, ...], *, nullable: bool) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in fields:
        schema = dict(_JSON_TYPES[f.type])
        if nullable:
            types = (
                schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            )
            schema["type"] = [*types, "null"]
        props[f.name] = schema
    out: dict[str, Any] = {
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }
    required = [f.name for f in fields if f.required]
    if required:
        out["required"] = required
    return out


_PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "message": {"type": "string"},
        "detail": {"type": "string"},
    },
    "required": ["type", "message"],
}


def build_openapi(spec: WsdlSpec, base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a subsystem's operations.

    Args:
        spec: the same description the WSDL is built from.
        base_url: the server URL callers (the security server) use.

    Returns:
        The document as a JSON-ready dict.
    """
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Problem": _PROBLEM}
    for op in spec.operations:
        row_ref = f"#/components/schemas/{op.code}Row"
        schemas[f"{op.code}Request"] = _object(op.inputs, nullable=False)
        schemas[f"{op.code}Row"] = _object(op.row, nullable=True)
        problem = {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }
        }
        paths[f"/rest/{op.code}"] = {
            "post": {
                "operationId": op.code,
                "summary": op.title or op.code,
                "description": op.notes,
                "x-xroad-version": op.version,
                "parameters": [
                    {
                        "name": "offset",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{op.code}Request"}
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "One page of rows",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "rows": {
                                            "type": "array",
                                            "items": {"$ref": row_ref},
                                        },
                                        "next": {"type": ["integer", "null"]},
                                    },
                                    "required": ["rows", "next"],
                                }
                            }
                        },
                    },
                    "400": {"description": "Invalid parameters", **problem},
                    "404": {"description": "Unknown service", **problem},
                    "503": {"description": "Database unavailable", **problem},
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{spec.name} services", "version": "1"},
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {"schemas": schemas},
    }
