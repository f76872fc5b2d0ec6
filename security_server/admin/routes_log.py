"""The auditor's side of the admin API: the message log (issue 6).

- ``GET /api/v1/message-log?queryId=&client=&service=&from=&to=&direction=
  &outcome=&before=&limit=``: records newest first, paged by record id
  (``before`` is the ``next_before`` of the previous page);
- ``GET /api/v1/message-log/{id}``: one record with its signature and, when
  it was logged in full mode, its message (decrypted when encrypted at rest);
- ``GET /api/v1/message-log/{id}/asice``: the record's ASiC-E container
  (409 ``NotTimestamped`` until the next time-stamping round);
- ``GET /api/v1/diagnostics/message-log``: the time-stamping and archiving
  backlog.

Roles. X-Road has no role that reads the message log in its user interface:
there the log is read from the database or the archive files by the
operator, and by information systems through the client proxy's ``/asic``.
We let the roles that answer for the server's records read it: the
*auditor* (X-Road's security server observer, read-only), the *security
officer* (responsible for the security policy and the audit log) and the
*system administrator* (who can read the database anyway). Registration
officers and service administrators manage configuration, not evidence, and
are refused.

Auditors are audited: every message body and container handed out is
recorded in the audit log (``message-log.read``, ``message-log.export``)
with the API key that asked, before the response is sent; a body is not
handed out if that record cannot be written.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from jplink.errors import Conflict, InvalidRequest, JPLinkError, NotFound
from jplink.identifiers import ClientId, parse_client_id, parse_service_id

from .. import archiver, audit, diagnostics, evidence, messagelog_query
from ..config import SecurityServerConfig
from ..evidence_http import deferred_decryptor
from ..exchange_ports import SavedConfProvider
from ..identity import read_anchor
from ..messagelog_query import MAX_PAGE, LogQuery, Outcome
from ..models import MessageLogRecord
from ..states import LogDirection
from ..timestamper_task import DEFAULT_INTERVAL_SECONDS
from .appkeys import CONFIG, DATABASE
from .auth import Route
from .http import actor, json_response, jsonable, now
from .roles import Role

__all__ = ["ROUTES", "LogHealth", "log_query"]

E = TypeVar("E", bound=enum.Enum)

_READERS = frozenset({Role.AUDITOR, Role.SECURITY_OFFICER, Role.SYSTEM_ADMINISTRATOR})
_PARAMS = frozenset(
    {"queryId", "client", "service", "from", "to", "direction", "outcome"}
    | {"before", "limit"}
)


def _time(query: Mapping[str, str], name: str) -> dt.datetime | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"Query parameter {name!r} must be an ISO 8601 time "
            "(percent-encode a '+' offset, or use 'Z')",
            code="InvalidField",
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _positive(query: Mapping[str, str], name: str, upper: int) -> int | None:
    text = query.get(name)
    if text is None:
        return None
    if not text.isdecimal() or not 1 <= int(text) <= upper:
        raise InvalidRequest(
            f"Query parameter {name!r} must be a number 1-{upper}", code="InvalidField"
        )
    return int(text)


def _client(text: str | None) -> str | None:
    # The stored form is SUBSYSTEM:I/C/M/S; X-Road's path form I:C:M[:S] is
    # accepted too. Both are parsed, so a typo is a 400, not an empty page.
    if text is None:
        return None
    if "/" in text:
        return str(parse_client_id(text))
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise InvalidRequest(
            f"{text!r} is not a client id (SUBSYSTEM:I/C/M/S or I:C:M[:S])",
            code="InvalidClientId",
        )
    return str(ClientId(*parts))


def _choice(query: Mapping[str, str], name: str, kind: type[E]) -> E | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        words = ", ".join(str(m.value) for m in kind)
        raise InvalidRequest(
            f"Query parameter {name!r} must be one of {words}", code="InvalidField"
        ) from None


def log_query(query: Mapping[str, str]) -> LogQuery:
    """The search criteria of a request's query string.

    Args:
        query: the query parameters (untrusted).

    Returns:
        The criteria.

    Raises:
        InvalidRequest: an unknown parameter or a malformed value.
    """
    unknown = sorted(set(query) - _PARAMS)
    if unknown:
        raise InvalidRequest(
            f"Unknown query parameter(s): {', '.join(unknown)}", code="InvalidField"
        )
    service = query.get("service")
    return LogQuery(
        query_id=query.get("queryId"),
        client=_client(query.get("client")),
        service=None if service is None else str(parse_service_id(service)),
        since=_time(query, "from"),
        until=_time(query, "to"),
        direction=_choice(query, "direction", LogDirection),
        outcome=_choice(query, "outcome", Outcome),
        before_id=_positive(query, "before", 2**63 - 1),
        limit=_positive(query, "limit", MAX_PAGE) or 100,
    )


async def _search(request: web.Request) -> web.Response:
    criteria = log_query(request.query)
    found = await messagelog_query.search_records(request.app[DATABASE], criteria)
    full = len(found) == criteria.limit
    return json_response(
        {"records": found, "next_before": found[-1].id if full and found else None}
    )


def _record_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdecimal() or int(text) > 2**63 - 1:
        raise InvalidRequest(f"{text!r} is not a record id", code="InvalidField")
    return int(text)


def _bytes_json(data: bytes | None) -> dict[str, str] | None:
    if data is None:
        return None
    out = {"base64": base64.b64encode(data).decode("ascii")}
    with contextlib.suppress(UnicodeDecodeError):  # binary REST bodies
        out["text"] = data.decode("utf-8")
    return out


async def _audited(
    request: web.Request, action: str, record_id: int, detail: dict[str, Any]
) -> None:
    """Record that a record's content is handed out, before it is.

    Raises:
        StorageError: the audit row cannot be written (the content is then
            not handed out).
    """
    async with request.app[DATABASE].transaction() as session:
        audit.record(
            session,
            actor=actor(request),
            action=action,
            target=f"message-log:{record_id}",
            now=now(request),
            detail=detail,
        )


def _decryptor(request: web.Request) -> evidence.BodyDecryptor:
    # Loaded on first use only: a server without encryption needs no
    # keystore, and a rotated keystore is read without a restart.
    config = request.app[CONFIG]
    return deferred_decryptor(lambda: evidence.decryptor_for(config))


async def _read(request: web.Request) -> web.Response:
    record_id = _record_id(request)
    db = request.app[DATABASE]
    # The listing fields and the signature (NotFound for an unknown id) ...
    shown = await messagelog_query.read_record(db, record_id, with_message=False)
    async with db.transaction() as session:
        record = await session.get(MessageLogRecord, record_id)
    if record is None:  # deleted by retention in between
        raise NotFound(f"No message-log record {record_id}", code="RecordNotFound")
    message = attachment = None
    encrypted = record.message_key_id is not None
    if record.message is not None:
        # ... and the body only when it was logged (full mode).
        if encrypted:
            message, attachment = _decryptor(request)(record)
        else:
            message, attachment = record.message, record.attachment
        await _audited(
            request,
            "message-log.read",
            record_id,
            {
                "query_id": record.query_id,
                "client": record.client,
                "service": record.service,
                "direction": record.direction,
            },
        )
    return json_response(
        {
            **jsonable(shown),
            "encrypted_at_rest": encrypted,
            "message": _bytes_json(message),
            "attachment": _bytes_json(attachment),
        }
    )


async def _container(request: web.Request) -> web.Response:
    record_id = _record_id(request)
    try:
        found = await evidence.export_record(
            request.app[DATABASE], record_id, decrypt=_decryptor(request)
        )
    except Conflict as exc:
        if exc.code != "NotTimestamped":
            raise
        raise Conflict(
            f"Record {record_id} is not time-stamped yet, so its container would "
            "not prove when the message was exchanged; it is time-stamped in the "
            "next round (see GET /api/v1/diagnostics/message-log)",
            code="NotTimestamped",
        ) from None
    await _audited(
        request,
        "message-log.export",
        record_id,
        {"query_id": found.query_id, "direction": found.direction.value},
    )
    return web.Response(
        body=found.data,
        headers={
            "Content-Type": evidence.ASIC_CONTENT_TYPE,
            "Content-Disposition": f'attachment; filename="{found.file_name}"',
        },
    )


def _interval_seconds(config: SecurityServerConfig) -> float:
    """``[message_log] timestamping_interval_seconds``, else the global one."""
    override = config.message_log.timestamping_interval_seconds
    if override is not None:
        return float(override)
    try:
        instance = read_anchor(config).instance_identifier
        loaded = SavedConfProvider(config.globalconf.directory, instance).loaded()
    except JPLinkError:
        return DEFAULT_INTERVAL_SECONDS
    if loaded.private is None:
        return DEFAULT_INTERVAL_SECONDS
    return float(max(1, loaded.private.time_stamping_interval_seconds))


@dataclass(frozen=True, slots=True)
class LogHealth:
    """The message log's time-stamping and archiving state, from the database.

    Attributes:
        pending: records without a time-stamp (the backlog).
        oldest_pending_at: when the oldest of them was logged.
        oldest_pending_age_seconds: how long it has waited.
        last_timestamp_at: when the newest time-stamp was stored (the last
            success).
        last_tsa_url: the TSA that gave it.
        timestamping_interval_seconds: how often the time-stamper runs.
        failing: the oldest pending record has waited more than two
            intervals, so time-stamping is not keeping up or failing.
        failure_period_seconds: ``acceptable_timestamp_failure_period_seconds``
            (0: never refuse).
        refusing: failing for longer than that period: the proxies refuse
            exchanges (``timestamper_failed``) until time-stamping recovers.
        archive_backlog: time-stamped records not archived yet.
    """

    pending: int
    oldest_pending_at: dt.datetime | None
    oldest_pending_age_seconds: float | None
    last_timestamp_at: dt.datetime | None
    last_tsa_url: str | None
    timestamping_interval_seconds: float
    failing: bool
    failure_period_seconds: int
    refusing: bool
    archive_backlog: int


async def _diagnostics(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    db = request.app[DATABASE]
    at = now(request)
    base = await diagnostics.message_log_diagnostics(db, now=at)
    oldest = base.oldest_pending_at
    age = None if oldest is None else max(0.0, (at - oldest).total_seconds())
    interval = _interval_seconds(config)
    period = config.message_log.acceptable_timestamp_failure_period_seconds
    failing = age is not None and age > 2 * interval
    return json_response(
        LogHealth(
            pending=base.pending,
            oldest_pending_at=oldest,
            oldest_pending_age_seconds=age,
            last_timestamp_at=base.last_timestamp_at,
            last_tsa_url=base.last_tsa_url,
            timestamping_interval_seconds=interval,
            failing=failing,
            failure_period_seconds=period,
            # TimestampingHealth.check's rule: refuse once the oldest record
            # without a time-stamp is older than the failure period.
            refusing=failing and period > 0 and age is not None and age > period,
            archive_backlog=await archiver.count_unarchived(db),
        )
    )


_V1 = "/api/v1"

#: The routes of this module and the roles allowed to call each.
ROUTES = (
    Route("GET", f"{_V1}/message-log", _search, _READERS),
    Route("GET", f"{_V1}/message-log/{{id}}", _read, _READERS),
    Route("GET", f"{_V1}/message-log/{{id}}/asice", _container, _READERS),
    Route("GET", f"{_V1}/diagnostics/message-log", _diagnostics, _READERS),
)
