"""Static checks of a service's SQL text before it ever runs.

The statement is written by the operator, not by callers, but the checks still
fail closed: a read-only service must be exactly one SELECT (or WITH ... SELECT)
statement with no data-changing keyword anywhere (``WITH x AS (DELETE ...)``
and ``SELECT ... INTO`` are writes in PostgreSQL); a write service must be one
statement as well. The runtime adds two more fences: read-only calls run in a
transaction that is always rolled back, and on PostgreSQL one declared
``READ ONLY``.

Placeholders follow SQLAlchemy's ``text()`` rule (``:name``, not ``::cast``), so
the names found here are exactly the names the driver will bind. Comments are
removed from the stored statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlparse
from sqlparse import tokens as T

from jplink.errors import InvalidRequest

__all__ = ["CheckedSql", "check_sql", "placeholder_names"]

# sqlalchemy.sql.elements.TextClause._bind_params_regex, the rule text() binds by.
_BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?!:)", re.UNICODE)

_WRITE_WORDS = frozenset(
    {
        "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "CREATE", "DROP",
        "ALTER", "TRUNCATE", "GRANT", "REVOKE", "COPY", "VACUUM", "ATTACH", "DETACH",
        "PRAGMA", "CALL", "EXEC", "EXECUTE", "LOCK", "INTO", "SET", "REINDEX",
        "ANALYZE", "COMMIT", "ROLLBACK", "BEGIN", "SAVEPOINT", "RELEASE", "DO",
        "LISTEN", "NOTIFY", "LOAD", "IMPORT",
    }
)  # fmt: skip
_WRITE_TYPES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "UPSERT"})


@dataclass(frozen=True, slots=True)
class CheckedSql:
    """A statement that passed the static checks.

    Attributes:
        sql: the statement without a trailing ``;``.
        placeholders: the ``:name`` parameters in order of first use.
        kind: ``SELECT`` or the write statement's type (``INSERT`` ...).
    """

    sql: str
    placeholders: tuple[str, ...]
    kind: str


def _strip_literals(sql: str) -> str:
    """The SQL without comments and quoted strings, for placeholder search."""
    parsed: tuple[Any, ...] = sqlparse.parse(sql)
    out = []
    for stmt in parsed:
        for tok in stmt.flatten():
            if tok.ttype in T.Comment or tok.ttype in T.Literal.String:
                out.append(" ")
            else:
                out.append(tok.value)
    return "".join(out)


def placeholder_names(sql: str) -> tuple[str, ...]:
    """The ``:name`` placeholders of ``sql``, in order of first use.

    This is SQLAlchemy's ``text()`` rule applied to the whole text, string
    literals included (``text()`` binds there too; write ``\\:`` for a literal
    colon), so a name found here is a name the driver would bind.
    """
    seen: dict[str, None] = {}
    for match in _BIND.finditer(sql):
        seen.setdefault(match.group(1), None)
    return tuple(seen)


def check_sql(sql: str, *, read_only: bool) -> CheckedSql:
    """Check that ``sql`` is one statement of an allowed kind.

    Args:
        sql: the operator's statement.
        read_only: whether the service is declared read-only.

    Returns:
        The checked statement.

    Raises:
        InvalidRequest: code ``InvalidSql`` for no statement, two or more
            statements, or a write (or unknown) statement in a read-only service.
    """
    parsed: tuple[Any, ...] = sqlparse.parse(sql)
    statements = [s for s in parsed if s.token_first(skip_cm=True)]
    if len(statements) != 1:
        raise InvalidRequest(
            f"The SQL must be exactly one statement; found {len(statements)}",
            code="InvalidSql",
        )
    stmt = statements[0]
    kind = stmt.get_type()
    words = {
        tok.normalized.upper()
        for tok in stmt.flatten()
        if tok.ttype in T.Keyword or tok.ttype in T.Keyword.DML or tok.ttype in T.DDL
    }
    if read_only:
        if kind != "SELECT":
            raise InvalidRequest(
                f"A read-only service may only run a SELECT or WITH statement, not "
                f"{kind}; declare the service as a write service if it changes data",
                code="InvalidSql",
            )
        found = sorted(words & _WRITE_WORDS)
        if found:
            raise InvalidRequest(
                f"A read-only service must not use {', '.join(found)}; declare the "
                "service as a write service if it changes data",
                code="InvalidSql",
            )
    elif kind not in _WRITE_TYPES | {"SELECT"}:
        raise InvalidRequest(
            f"A write service may run one SELECT, INSERT, UPDATE, DELETE or MERGE "
            f"statement, not {kind}",
            code="InvalidSql",
        )
    # Comments go: a trailing "-- ..." would swallow the paging wrapper's ")"
    # and a ":name" in a comment would still be bound by text().
    text = sqlparse.format(str(stmt), strip_comments=True).strip().rstrip(";").strip()
    # A ';' left inside means sqlparse saw something it could not split.
    if ";" in _strip_literals(text):
        raise InvalidRequest("The SQL must be exactly one statement", code="InvalidSql")
    return CheckedSql(sql=text, placeholders=placeholder_names(text), kind=kind)
