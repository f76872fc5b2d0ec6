"""Caller values -> bound parameters, and database values -> output."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from adapter_server.definitions import (
    ColumnSpec,
    ParameterSpec,
    ParamType,
    ServiceDefinition,
)
from adapter_server.values import (
    bind_parameters,
    coerce_value,
    render_json,
    render_text,
)
from jplink.errors import InvalidRequest, LocalProtocolError

S, N, D, B = ParamType.STRING, ParamType.INTEGER, ParamType.DECIMAL, ParamType.BOOLEAN
DA, DT = ParamType.DATE, ParamType.DATETIME

GOOD = [
    (ParameterSpec("p", S), "O'Hara; DROP TABLE x--", "O'Hara; DROP TABLE x--"),
    (ParameterSpec("p", N), " 42 ", 42),
    (ParameterSpec("p", N), -7, -7),
    (ParameterSpec("p", D), "12.50", Decimal("12.50")),
    (ParameterSpec("p", D), 2.5, Decimal("2.5")),
    (ParameterSpec("p", B), "true", True),
    (ParameterSpec("p", B), "0", False),
    (ParameterSpec("p", B), False, False),
    (ParameterSpec("p", DA), "2026-01-31", dt.date(2026, 1, 31)),
    (
        ParameterSpec("p", DT),
        "2026-01-31T09:00:00Z",
        dt.datetime(2026, 1, 31, 9, tzinfo=dt.UTC),
    ),
]

BAD = [
    (ParameterSpec("p", N), "1 OR 1=1"),
    (ParameterSpec("p", N), "1e3"),
    (ParameterSpec("p", N), True),
    (ParameterSpec("p", N), str(2**63)),
    (ParameterSpec("p", N, minimum=Decimal(1), maximum=Decimal(10)), "11"),
    (ParameterSpec("p", D), "NaN"),
    (ParameterSpec("p", D), "1; DROP TABLE people"),
    (ParameterSpec("p", D, maximum=Decimal("9.99")), "10"),
    (ParameterSpec("p", B), "yes"),
    (ParameterSpec("p", DA), "2026-02-30"),
    (ParameterSpec("p", DA), "2026-01-31T00:00:00"),
    (ParameterSpec("p", DT), "2026-01-31"),
    (ParameterSpec("p", DT), "'; DELETE FROM people; --"),
    (ParameterSpec("p", S, max_length=3), "abcd"),
    (ParameterSpec("p", S, min_length=2), "a"),
    (ParameterSpec("p", S), "a\x00b"),
    (ParameterSpec("p", S), 5),
]


@pytest.mark.parametrize(("spec", "raw", "expected"), GOOD)
def test_coerce_accepts(spec, raw, expected):
    value = coerce_value(spec, raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("spec", "raw"), BAD)
def test_coerce_refuses_with_named_parameter(spec, raw):
    with pytest.raises(InvalidRequest) as err:
        coerce_value(spec, raw)
    assert err.value.code == "InvalidParameter"
    assert "'p'" in err.value.message
    # The value is never echoed back (it may be an attack string or personal data).
    if isinstance(raw, str) and len(raw) > 12:
        assert raw not in err.value.message


def _svc(*params):
    return ServiceDefinition("s", "SUB", "main", "SELECT 1", parameters=params)


def test_bind_fills_defaults_and_checks_presence():
    svc = _svc(
        ParameterSpec("a", N),
        ParameterSpec("b", S, required=False, default="x"),
        ParameterSpec("c", DA, required=False),
    )
    assert bind_parameters(svc, {"a": "1"}) == {"a": 1, "b": "x", "c": None}
    with pytest.raises(InvalidRequest) as err:
        bind_parameters(svc, {})
    assert err.value.code == "MissingParameter"
    with pytest.raises(InvalidRequest) as err:
        bind_parameters(svc, {"a": "1", "zz": "2"})
    assert err.value.code == "UnknownParameter"


@pytest.mark.parametrize(
    ("col_type", "value", "text", "json"),
    [
        (N, 5, "5", 5),
        (N, Decimal("5"), "5", 5),
        (D, 7.25, "7.25", "7.25"),
        (D, Decimal("1E+2"), "100", "100"),
        (B, 1, "true", True),
        (B, False, "false", False),
        (DA, "2026-01-02", "2026-01-02", "2026-01-02"),
        (DA, dt.date(2026, 1, 2), "2026-01-02", "2026-01-02"),
        (
            DT,
            dt.datetime(2026, 1, 2, 3, 4, 5),
            "2026-01-02T03:04:05",
            "2026-01-02T03:04:05",
        ),
        (S, 12, "12", "12"),
    ],
)
def test_render(col_type, value, text, json):
    col = ColumnSpec("c", col_type)
    assert render_text(col, value) == text
    assert render_json(col, value) == json


def test_render_wrong_declared_type_is_a_local_error():
    with pytest.raises(LocalProtocolError) as err:
        render_text(ColumnSpec("c", N), "not a number")
    assert err.value.code == "InvalidColumnType"
