"""Typed values: caller input to bound parameters, database values to output.

Input arrives as XML text (SOAP) or JSON values (REST). Each is checked against
its :class:`~adapter_server.definitions.ParameterSpec` and turned into a Python
value that is *bound* to the statement, never formatted into SQL text. Output
values from the database are turned into the canonical XML Schema lexical form
(SOAP) or a JSON value (REST) for their declared column type.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from jplink.errors import InvalidRequest, LocalProtocolError

from .definitions import ColumnSpec, ParameterSpec, ParamType, ServiceDefinition

__all__ = [
    "bind_parameters",
    "coerce_value",
    "render_json",
    "render_text",
]

_INT_TEXT = re.compile(r"[+-]?[0-9]{1,19}\Z")
_DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)\Z")
_INT64 = (-(2**63), 2**63 - 1)
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}
#: Longest string parameter accepted when the service declares no max_length.
DEFAULT_MAX_STRING = 4000


def _bad(spec: ParameterSpec, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"Parameter {spec.name!r} ({spec.type.value}) {why}",
        code="InvalidParameter",
        detail={"parameter": spec.name},
    )


def _to_int(spec: ParameterSpec, raw: object) -> int:
    if isinstance(raw, bool):
        raise _bad(spec, "must be an integer, not a boolean")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and _INT_TEXT.match(raw.strip()):
        value = int(raw.strip())
    else:
        raise _bad(spec, "must be an integer such as 42")
    if not _INT64[0] <= value <= _INT64[1]:
        raise _bad(spec, "is outside the 64-bit integer range")
    return value


def _to_decimal(spec: ParameterSpec, raw: object) -> Decimal:
    if isinstance(raw, bool):
        raise _bad(spec, "must be a number, not a boolean")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not _DECIMAL_TEXT.match(raw.strip()):
        raise _bad(spec, "must be a decimal number such as 12.50")
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise _bad(spec, "must be a decimal number such as 12.50") from None
    if len(value.as_tuple().digits) > 38:
        raise _bad(spec, "has more than 38 digits")
    return value


def _check_range(spec: ParameterSpec, value: int | Decimal) -> None:
    if spec.minimum is not None and value < spec.minimum:
        raise _bad(spec, f"must be at least {spec.minimum}")
    if spec.maximum is not None and value > spec.maximum:
        raise _bad(spec, f"must be at most {spec.maximum}")


def coerce_value(spec: ParameterSpec, raw: object) -> Any:
    """Check one caller-supplied value and convert it for binding.

    Args:
        spec: the declared parameter.
        raw: XML text, or a JSON value (str, int, float, bool).

    Returns:
        ``str``, ``int``, ``Decimal``, ``bool``, ``date`` or ``datetime``.

    Raises:
        InvalidRequest: code ``InvalidParameter``, naming the parameter and the
            expected form (never echoing the value).
    """
    kind = spec.type
    if kind is ParamType.STRING:
        if not isinstance(raw, str):
            raise _bad(spec, "must be a string")
        limit = spec.max_length if spec.max_length is not None else DEFAULT_MAX_STRING
        if len(raw) > limit:
            raise _bad(spec, f"is longer than {limit} characters")
        if spec.min_length is not None and len(raw) < spec.min_length:
            raise _bad(spec, f"is shorter than {spec.min_length} characters")
        if "\x00" in raw:
            raise _bad(spec, "must not contain NUL characters")
        return raw
    if kind is ParamType.INTEGER:
        number = _to_int(spec, raw)
        _check_range(spec, number)
        return number
    if kind is ParamType.DECIMAL:
        dec = _to_decimal(spec, raw)
        _check_range(spec, dec)
        return dec
    if kind is ParamType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip() in _TRUE | _FALSE:
            return raw.strip() in _TRUE
        raise _bad(spec, "must be true or false")
    if not isinstance(raw, str):
        raise _bad(spec, "must be a string in ISO 8601 form")
    text = raw.strip()
    try:
        if kind is ParamType.DATE:
            if len(text) != 10:
                raise ValueError(text)
            return dt.date.fromisoformat(text)
        if "T" not in text:
            raise ValueError(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        example = "2026-01-31" if kind is ParamType.DATE else "2026-01-31T09:00:00Z"
        raise _bad(spec, f"must look like {example}") from None


def bind_parameters(
    service: ServiceDefinition, supplied: Mapping[str, object]
) -> dict[str, Any]:
    """Check a call's parameters and build the bind values.

    Args:
        service: the service called.
        supplied: parameter name -> raw value as received.

    Returns:
        A value for every declared parameter (defaults and ``None`` filled in).

    Raises:
        InvalidRequest: ``UnknownParameter`` for an undeclared name,
            ``MissingParameter`` for an absent required one,
            ``InvalidParameter`` for a value of the wrong form or range.
    """
    unknown = sorted(set(supplied) - {p.name for p in service.parameters})
    if unknown:
        raise InvalidRequest(
            f"Service {service.code!r} has no parameter(s) {', '.join(unknown)}",
            code="UnknownParameter",
        )
    bound: dict[str, Any] = {}
    for spec in service.parameters:
        raw = supplied.get(spec.name)
        if raw is None:
            if spec.required:
                raise InvalidRequest(
                    f"Parameter {spec.name!r} ({spec.type.value}) is required",
                    code="MissingParameter",
                    detail={"parameter": spec.name},
                )
            raw = spec.default
        bound[spec.name] = None if raw is None else coerce_value(spec, raw)
    return bound


def _as_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return Decimal(str(value))
    raise TypeError(type(value).__name__)


def _normalise(column: ColumnSpec, value: object) -> Any:
    kind = column.type
    try:
        if kind is ParamType.STRING:
            return value if isinstance(value, str) else str(value)
        if kind is ParamType.INTEGER:
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, int):
                return value
            dec = _as_decimal(value)
            if dec != dec.to_integral_value():
                raise ValueError("not integral")
            return int(dec)
        if kind is ParamType.DECIMAL:
            return _as_decimal(value)
        if kind is ParamType.BOOLEAN:
            if isinstance(value, bool | int):
                return bool(value)
            if isinstance(value, str) and value.lower() in _TRUE | _FALSE | {"t", "f"}:
                return value.lower() in _TRUE | {"t"}
            raise ValueError("not a boolean")
        if kind is ParamType.DATE:
            if isinstance(value, dt.datetime):
                return value.date()
            if isinstance(value, dt.date):
                return value
            return dt.date.fromisoformat(str(value)[:10])
        if isinstance(value, dt.datetime):
            return value
        return dt.datetime.fromisoformat(str(value))
    except (ValueError, TypeError, InvalidOperation) as exc:
        # Our declared column type does not fit what the database returned:
        # a registration mistake, not the caller's fault.
        raise LocalProtocolError(
            f"Result column {column.name!r} does not hold {kind.value} values; "
            "fix the service's column type",
            code="InvalidColumnType",
        ) from exc


def render_text(column: ColumnSpec, value: object) -> str:
    """A database value in the XML Schema lexical form of its column type.

    Raises:
        LocalProtocolError: ``InvalidColumnType`` if the value does not fit.
    """
    v = _normalise(column, value)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def render_json(column: ColumnSpec, value: object) -> Any:
    """A database value as a JSON value (decimals as strings, to stay exact).

    Raises:
        LocalProtocolError: ``InvalidColumnType`` if the value does not fit.
    """
    if value is None:
        return None
    v = _normalise(column, value)
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, dt.date):
        return v.isoformat()
    return v
