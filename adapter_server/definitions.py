"""What an operator registers: data sources and SQL services, as frozen values.

A :class:`ServiceDefinition` is the whole contract of one published service:
its X-Road service code and version, the SQL with ``:named`` parameters, the
typed parameters a caller fills in, the typed result columns and the limits.
Constructors validate every name, so an instance that exists can be turned into
XML element names, SQL bind names and JSON keys without further checks. Bad
values from an operator (CLI, admin API, an imported file) raise
:class:`~jplink.errors.InvalidRequest`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal

from jplink.errors import InvalidRequest

__all__ = [
    "RESERVED_NAMES",
    "ColumnSpec",
    "DataSourceDefinition",
    "ParamType",
    "ParameterSpec",
    "ServiceDefinition",
    "check_name",
    "check_service_code",
]

# A parameter or column name is used as an XML element name (an NCName), a SQL
# bind name and a JSON key, so it must be valid as all three. Names starting
# with "xml" are reserved by XML 1.0 §2.3.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
# A service code is an X-Road identifier part (PR-REST §4.8 recommends
# A-Z a-z 0-9 '()+,-.=?) and the local name of the body wrapper element
# (PR-MESS §2.3), so it must be an NCName too: the intersection of both.
_SERVICE_CODE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,99}\Z")
_VERSION = re.compile(r"[A-Za-z0-9_.\-]{1,30}\Z")
_DS_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")

#: Request/response element names the adapter itself uses; no parameter or
#: column may take them.
RESERVED_NAMES = frozenset({"pageOffset", "row", "nextOffset", "rows", "next"})


def check_name(value: object, what: str) -> str:
    """Check a parameter or column name.

    Raises:
        InvalidRequest: code ``InvalidName`` if it is not a valid XML/SQL name.
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidRequest(
            f"{what} {value!r} is not a valid name: use a letter or '_' followed by "
            "letters, digits or '_' (at most 63 characters)",
            code="InvalidName",
        )
    if value.lower().startswith("xml") or value in RESERVED_NAMES:
        raise InvalidRequest(
            f"{what} {value!r} is a reserved name; choose another", code="InvalidName"
        )
    return value


def check_service_code(value: object) -> str:
    """Check a service code (X-Road identifier part and XML NCName).

    Raises:
        InvalidRequest: code ``InvalidName``.
    """
    if not isinstance(value, str) or not _SERVICE_CODE.match(value):
        raise InvalidRequest(
            f"Service code {value!r} is not valid: start with a letter or '_' and use "
            "only letters, digits, '_', '.' or '-' (at most 100 characters)",
            code="InvalidName",
        )
    if value.lower().startswith("xml"):
        raise InvalidRequest(f"Service code {value!r} is reserved", code="InvalidName")
    return value


class ParamType(enum.Enum):
    """Parameter and column types; the value is the name used in files and APIs."""

    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"

    @classmethod
    def parse(cls, value: object, what: str) -> ParamType:
        """The type named ``value``.

        Raises:
            InvalidRequest: for an unknown type name.
        """
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(t.value for t in cls)
            raise InvalidRequest(
                f"{what}: unknown type {value!r}; use one of {allowed}",
                code="InvalidType",
            ) from None


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """One typed parameter of a service.

    ``default`` and ``sample`` are kept in their text form (as a caller would
    send them in XML) and checked against the type when the service is
    registered. ``sample`` is the value used for the registration preview.
    """

    name: str
    type: ParamType
    required: bool = True
    default: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    sample: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name, "Parameter")
        if self.required and self.default is not None:
            raise InvalidRequest(
                f"Parameter {self.name!r} is required and so cannot have a default; "
                "set required = false",
                code="InvalidParameterSpec",
            )
        for bound in ("min_length", "max_length"):
            value = getattr(self, bound)
            if value is not None and (
                self.type is not ParamType.STRING
                or isinstance(value, bool)
                or value < 0
            ):
                raise InvalidRequest(
                    f"Parameter {self.name!r}: {bound} applies to strings only and "
                    "must be a non-negative integer",
                    code="InvalidParameterSpec",
                )
        for bound in ("minimum", "maximum"):
            value = getattr(self, bound)
            if value is not None and (
                self.type not in (ParamType.INTEGER, ParamType.DECIMAL)
                or not value.is_finite()
            ):
                raise InvalidRequest(
                    f"Parameter {self.name!r}: {bound} applies to integer and decimal "
                    "parameters only and must be a finite number",
                    code="InvalidParameterSpec",
                )
        low, high = self.minimum, self.maximum
        if low is not None and high is not None and low > high:
            raise InvalidRequest(
                f"Parameter {self.name!r}: minimum is above maximum",
                code="InvalidParameterSpec",
            )
        lo, hi = self.min_length, self.max_length
        if lo is not None and hi is not None and lo > hi:
            raise InvalidRequest(
                f"Parameter {self.name!r}: min_length is above max_length",
                code="InvalidParameterSpec",
            )


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One typed result column."""

    name: str
    type: ParamType

    def __post_init__(self) -> None:
        check_name(self.name, "Result column")


@dataclass(frozen=True, slots=True)
class DataSourceDefinition:
    """A database the adapter queries. The password is kept apart (encrypted).

    Attributes:
        name: the handle services refer to.
        url: a SQLAlchemy URL *without* a password; one given in the URL is
            moved into the encrypted store by the registry and never echoed.
        pool_size: connections kept open to this database.
        connect_timeout: seconds to wait for a new connection.
        query_timeout: seconds a statement may run before the call fails with
            ``QueryTimeout`` (also set server-side where the database allows).
    """

    name: str
    url: str
    pool_size: int = 5
    connect_timeout: float = 10.0
    query_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _DS_NAME.match(self.name):
            raise InvalidRequest(
                f"Data source name {self.name!r} is not valid: use 1-64 letters, "
                "digits, '_', '.' or '-'",
                code="InvalidName",
            )
        if not 1 <= self.pool_size <= 200:
            raise InvalidRequest("pool_size must be between 1 and 200")
        for name in ("connect_timeout", "query_timeout"):
            value = getattr(self, name)
            if not 0 < value <= 3600:
                raise InvalidRequest(f"{name} must be between 0 and 3600 seconds")


@dataclass(frozen=True, slots=True)
class ServiceDefinition:
    """A registered SQL service.

    Attributes:
        code: the X-Road service code (and the body wrapper element's name).
        subsystem: the provider subsystem code whose WSDL lists this service.
        datasource: the name of the data source it runs on.
        sql: one statement with ``:name`` placeholders; values are always bound.
        read_only: a read-only service may hold only a single SELECT/WITH
            statement and always runs in a transaction that is rolled back.
        max_rows: the page size; more rows are offered with ``nextOffset``.
        columns: the result columns; empty until registration introspects them.
    """

    code: str
    subsystem: str
    datasource: str
    sql: str
    title: str = ""
    notes: str = ""
    version: str = "v1"
    parameters: tuple[ParameterSpec, ...] = ()
    columns: tuple[ColumnSpec, ...] = ()
    max_rows: int = 1000
    read_only: bool = True
    enabled: bool = True

    def __post_init__(self) -> None:
        check_service_code(self.code)
        if not isinstance(self.subsystem, str) or not _SERVICE_CODE.match(
            self.subsystem
        ):
            raise InvalidRequest(
                f"Subsystem code {self.subsystem!r} is not valid", code="InvalidName"
            )
        if not isinstance(self.version, str) or not _VERSION.match(self.version):
            raise InvalidRequest(
                f"Service version {self.version!r} is not valid: use 1-30 letters, "
                "digits, '_', '.' or '-'",
                code="InvalidName",
            )
        if not isinstance(self.sql, str) or not self.sql.strip():
            raise InvalidRequest("The SQL statement is empty", code="InvalidSql")
        if not 1 <= self.max_rows <= 100_000:
            raise InvalidRequest("max_rows must be between 1 and 100000")
        names = [p.name for p in self.parameters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        cols = [c.name for c in self.columns]
        dupes += sorted({n for n in cols if cols.count(n) > 1})
        if dupes:
            raise InvalidRequest(
                f"Duplicate parameter or column name(s): {', '.join(dupes)}",
                code="InvalidName",
            )

    def parameter(self, name: str) -> ParameterSpec | None:
        """The parameter called ``name``, if declared."""
        return next((p for p in self.parameters if p.name == name), None)
