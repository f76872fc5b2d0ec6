"""Plain-data forms of services and data sources (JSON, TOML, API bodies).

One shape serves the database JSON columns, the admin API and the
export/import files, so a service exported to git and imported elsewhere is
the same service. Reading is strict: unknown keys and wrong types raise
:class:`~jplink.errors.InvalidRequest` naming the key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from jplink.errors import InvalidRequest

from .definitions import (
    ColumnSpec,
    DataSourceDefinition,
    ParameterSpec,
    ParamType,
    ServiceDefinition,
)

__all__ = [
    "EXPORT_FORMAT",
    "datasource_from_dict",
    "datasource_to_dict",
    "dump_json",
    "dump_toml",
    "load_document",
    "parameter_from_dict",
    "parameter_to_dict",
    "service_from_dict",
    "service_to_dict",
]

#: Written into every export file; import refuses other values.
EXPORT_FORMAT = "jplink-adapter/1"

_PARAM_KEYS = {
    "name": str, "type": str, "required": bool, "default": str, "min_length": int,
    "max_length": int, "minimum": (str, int, float), "maximum": (str, int, float),
    "sample": str,
}  # fmt: skip
_SERVICE_KEYS = {
    "code": str, "subsystem": str, "datasource": str, "sql": str, "title": str,
    "notes": str, "version": str, "parameters": list, "columns": list,
    "max_rows": int, "read_only": bool, "enabled": bool,
}  # fmt: skip
_DS_KEYS = {
    "name": str, "url": str, "pool_size": int, "connect_timeout": (int, float),
    "query_timeout": (int, float), "password": str,
}  # fmt: skip


def _checked(data: object, keys: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidRequest(f"{where}: expected an object/table")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise InvalidRequest(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))}; "
            f"allowed: {', '.join(sorted(keys))}"
        )
    out: dict[str, Any] = {}
    for key, value in data.items():
        expected = keys[key]
        bad_bool = isinstance(value, bool) and expected is not bool
        if not isinstance(value, expected) or bad_bool:
            raise InvalidRequest(f"{where}.{key}: wrong type {type(value).__name__}")
        out[key] = value
    return out


def _decimal(value: object, where: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise InvalidRequest(f"{where}: not a number") from None


def parameter_from_dict(data: object, where: str = "parameter") -> ParameterSpec:
    """A :class:`ParameterSpec` from its plain form.

    Raises:
        InvalidRequest: unknown keys, wrong types or invalid values.
    """
    d = _checked(data, _PARAM_KEYS, where)
    if "name" not in d or "type" not in d:
        raise InvalidRequest(f"{where}: 'name' and 'type' are required")
    return ParameterSpec(
        name=d["name"],
        type=ParamType.parse(d["type"], f"{where}.type"),
        required=d.get("required", True),
        default=d.get("default"),
        min_length=d.get("min_length"),
        max_length=d.get("max_length"),
        minimum=_decimal(d.get("minimum"), f"{where}.minimum"),
        maximum=_decimal(d.get("maximum"), f"{where}.maximum"),
        sample=d.get("sample"),
    )


def parameter_to_dict(spec: ParameterSpec) -> dict[str, Any]:
    """The plain form of a parameter (``None`` values left out, for TOML)."""
    out: dict[str, Any] = {
        "name": spec.name,
        "type": spec.type.value,
        "required": spec.required,
    }
    for key in ("default", "min_length", "max_length", "sample"):
        if getattr(spec, key) is not None:
            out[key] = getattr(spec, key)
    for key in ("minimum", "maximum"):
        if getattr(spec, key) is not None:
            out[key] = str(getattr(spec, key))
    return out


def _column_from_dict(data: object, where: str) -> ColumnSpec:
    d = _checked(data, {"name": str, "type": str}, where)
    if "name" not in d or "type" not in d:
        raise InvalidRequest(f"{where}: 'name' and 'type' are required")
    return ColumnSpec(d["name"], ParamType.parse(d["type"], f"{where}.type"))


def service_from_dict(data: object, where: str = "service") -> ServiceDefinition:
    """A :class:`ServiceDefinition` from its plain form.

    Raises:
        InvalidRequest: unknown keys, wrong types or invalid values.
    """
    d = _checked(data, _SERVICE_KEYS, where)
    missing = sorted({"code", "subsystem", "datasource", "sql"} - set(d))
    if missing:
        raise InvalidRequest(f"{where}: missing required key(s) {', '.join(missing)}")
    params = tuple(
        parameter_from_dict(p, f"{where}.parameters[{i}]")
        for i, p in enumerate(d.pop("parameters", []))
    )
    cols = tuple(
        _column_from_dict(c, f"{where}.columns[{i}]")
        for i, c in enumerate(d.pop("columns", []))
    )
    return ServiceDefinition(**d, parameters=params, columns=cols)


def service_to_dict(service: ServiceDefinition) -> dict[str, Any]:
    """The plain form of a service."""
    return {
        "code": service.code,
        "version": service.version,
        "subsystem": service.subsystem,
        "title": service.title,
        "notes": service.notes,
        "datasource": service.datasource,
        "sql": service.sql,
        "max_rows": service.max_rows,
        "read_only": service.read_only,
        "enabled": service.enabled,
        "parameters": [parameter_to_dict(p) for p in service.parameters],
        "columns": [{"name": c.name, "type": c.type.value} for c in service.columns],
    }


def datasource_from_dict(
    data: object, where: str = "datasource"
) -> tuple[DataSourceDefinition, str | None]:
    """A data source and its password (if given) from the plain form.

    Raises:
        InvalidRequest: unknown keys, wrong types or invalid values.
    """
    d = _checked(data, _DS_KEYS, where)
    if "name" not in d or "url" not in d:
        raise InvalidRequest(f"{where}: 'name' and 'url' are required")
    password = d.pop("password", None)
    return DataSourceDefinition(**d), password


def datasource_to_dict(source: DataSourceDefinition) -> dict[str, Any]:
    """The plain form of a data source; it never holds the password."""
    return {
        "name": source.name,
        "url": source.url,
        "pool_size": source.pool_size,
        "connect_timeout": source.connect_timeout,
        "query_timeout": source.query_timeout,
    }


def load_document(text: str, fmt: str) -> dict[str, Any]:
    """Parse an export file (``toml`` or ``json``).

    Raises:
        InvalidRequest: unparsable text or a wrong ``format`` marker.
    """
    try:
        data: Any = tomllib.loads(text) if fmt == "toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"The file is not valid {fmt.upper()}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise InvalidRequest(f"The file is not a {EXPORT_FORMAT} export")
    return data


def dump_json(document: Mapping[str, Any]) -> str:
    """An export document as JSON text."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes are valid TOML basic-string escapes.
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_table(header: str, table: Mapping[str, Any], out: list[str]) -> None:
    out.append(f"\n[[{header}]]")
    nested = []
    for key, value in table.items():
        if isinstance(value, list):
            nested.append((key, value))
        else:
            out.append(f"{key} = {_toml_value(value)}")
    for key, items in nested:
        for item in items:
            _toml_table(f"{header}.{key}", item, out)


def dump_toml(document: Mapping[str, Any]) -> str:
    """An export document as TOML text (arrays of tables, no inline tables).

    Only the shapes this module writes are supported: top-level scalars and
    lists of tables whose values are scalars or lists of flat tables.
    """
    out = [
        f"{k} = {_toml_value(v)}"
        for k, v in document.items()
        if not isinstance(v, list)
    ]
    for key, items in document.items():
        if isinstance(items, list):
            for item in items:
                _toml_table(key, item, out)
    return "\n".join(out) + "\n"
