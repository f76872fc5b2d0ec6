"""Reading the message log: the auditor's search and record view.

Used by ``jplink ss log search|show`` and the admin API's auditor role. Search
by query id, client, service, time range, direction and outcome (SOAP fault or
not); results come newest first, paged by record id (``before_id``).

The outcome is a column (``message_log.fault``/``fault_code``) so the search
stays an index scan. Records logged before the writer recorded it have NULL;
:func:`classify_outcomes` fills those that still hold their message (the
archiver runs it on each pass); records kept as metadata only stay unknown.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import Select, select, update

from jplink.errors import InvalidRequest, JPLinkError, NotFound
from jplink.protocol.faults import FAULT_TAG
from jplink.storage import Database
from jplink.xml import parse_xml

from .models import MessageLogRecord, MessageTimestamp
from .states import LogDirection, LogSide

__all__ = [
    "MAX_PAGE",
    "LogQuery",
    "LogRecordDetail",
    "LogRecordSummary",
    "Outcome",
    "classify_outcomes",
    "message_outcome",
    "read_record",
    "search_records",
]

#: Largest page a search returns.
MAX_PAGE = 1000
_SOAP_BODY = "{http://schemas.xmlsoap.org/soap/envelope/}Body"


class Outcome(enum.Enum):
    """Whether a logged message is a SOAP fault; the value is the API word."""

    OK = "ok"
    FAULT = "fault"
    #: Not recorded and not derivable (metadata-only record).
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Search criteria; every field is optional and they combine with AND.

    Attributes:
        query_id: exact query id.
        client: exact client identifier text (``SUBSYSTEM:JP/COM/1111/app``).
        service: exact service identifier text.
        since, until: ``since <= logged_at < until`` (aware datetimes).
        direction: request or response.
        outcome: ok, fault or unknown.
        before_id: only records with a smaller id (the next page).
        limit: page size, 1..:data:`MAX_PAGE`.
    """

    query_id: str | None = None
    client: str | None = None
    service: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    direction: LogDirection | None = None
    outcome: Outcome | None = None
    before_id: int | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise ValueError(f"limit must be 1..{MAX_PAGE}")
        for value in (self.since, self.until):
            if value is not None and value.tzinfo is None:
                raise ValueError("since/until must be timezone-aware")


@dataclass(frozen=True, slots=True)
class LogRecordSummary:
    """One record as a search lists it (no message, no signature)."""

    id: int
    query_id: str
    client: str
    service: str
    direction: LogDirection
    side: LogSide
    logged_at: dt.datetime
    x_request_id: str | None
    outcome: Outcome
    fault_code: str | None
    has_message: bool
    timestamped: bool
    timestamp_time: dt.datetime | None
    archived: bool
    archive_file: str | None


@dataclass(frozen=True, slots=True)
class LogRecordDetail:
    """One record in full: its evidence and, when logged, its message.

    Attributes:
        summary: the listing fields.
        signature_xml: the signature document as logged.
        signer_cert_sha256: hex SHA-256 of the signing certificate.
        batch_signature: whether a signature hash chain is kept.
        message: the message bytes; None in metadata mode or when not asked.
        attachment: the REST body, under the same rule.
    """

    summary: LogRecordSummary
    signature_xml: str
    signer_cert_sha256: str
    batch_signature: bool
    message: bytes | None
    attachment: bytes | None


def message_outcome(message: bytes) -> tuple[Outcome, str | None]:
    """Whether a logged SOAP message is a fault, and its ``faultcode``.

    Args:
        message: the SOAP envelope bytes as logged.

    Returns:
        (FAULT, code) for a fault, (OK, None) for anything else, including a
        body that is not SOAP (a REST header part).
    """
    try:
        root = parse_xml(message)
    except JPLinkError:
        return Outcome.OK, None  # REST header parts are not XML
    body = root.find(_SOAP_BODY)
    fault = None if body is None else body.find(FAULT_TAG)
    if fault is None:
        return Outcome.OK, None
    code = fault.findtext("faultcode")
    return Outcome.FAULT, None if code is None else code.strip()[:255]


def _outcome(record: MessageLogRecord) -> Outcome:
    if record.fault is None:
        return Outcome.UNKNOWN
    return Outcome.FAULT if record.fault else Outcome.OK


def _summary(record: MessageLogRecord, ts: MessageTimestamp | None) -> LogRecordSummary:
    return LogRecordSummary(
        id=record.id,
        query_id=record.query_id,
        client=record.client,
        service=record.service,
        direction=LogDirection(record.direction),
        side=LogSide(record.side),
        logged_at=record.logged_at,
        x_request_id=record.x_request_id,
        outcome=_outcome(record),
        fault_code=record.fault_code,
        has_message=record.message is not None,
        timestamped=ts is not None,
        timestamp_time=None if ts is None else ts.gen_time,
        archived=bool(record.archived),
        archive_file=record.archive_file,
    )


def _filtered(query: LogQuery) -> Select[MessageLogRecord, MessageTimestamp]:
    m = MessageLogRecord
    stmt = select(m, MessageTimestamp).outerjoin(
        MessageTimestamp, MessageTimestamp.id == m.timestamp_id
    )
    if query.query_id is not None:
        stmt = stmt.where(m.query_id == query.query_id)
    if query.client is not None:
        stmt = stmt.where(m.client == query.client)
    if query.service is not None:
        stmt = stmt.where(m.service == query.service)
    if query.since is not None:
        stmt = stmt.where(m.logged_at >= query.since)
    if query.until is not None:
        stmt = stmt.where(m.logged_at < query.until)
    if query.direction is not None:
        stmt = stmt.where(m.direction == query.direction.value)
    if query.outcome is Outcome.UNKNOWN:
        stmt = stmt.where(m.fault.is_(None))
    elif query.outcome is not None:
        stmt = stmt.where(m.fault.is_(query.outcome is Outcome.FAULT))
    if query.before_id is not None:
        stmt = stmt.where(m.id < query.before_id)
    return stmt.order_by(m.id.desc()).limit(query.limit)


async def search_records(db: Database, query: LogQuery) -> tuple[LogRecordSummary, ...]:
    """Search the message log, newest first.

    Args:
        db: the security server's database.
        query: the criteria.

    Returns:
        At most ``query.limit`` records; pass the last id as ``before_id``
        for the next page.

    Raises:
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        rows = (await session.execute(_filtered(query))).all()
        return tuple(_summary(record, ts) for record, ts in rows)


async def read_record(
    db: Database, record_id: int, *, with_message: bool = True
) -> LogRecordDetail:
    """One record with its evidence, and its message if it was logged in full.

    Args:
        db: the security server's database.
        record_id: the record id.
        with_message: include the message and REST body (when logged); an
            auditor role that may see metadata only passes False.

    Returns:
        The record.

    Raises:
        NotFound: code ``RecordNotFound``.
        InvalidRequest: a negative id.
    """
    if record_id < 0:
        raise InvalidRequest("A record id is a positive number")
    async with db.transaction() as session:
        row = (
            await session.execute(
                select(MessageLogRecord, MessageTimestamp)
                .outerjoin(
                    MessageTimestamp,
                    MessageTimestamp.id == MessageLogRecord.timestamp_id,
                )
                .where(MessageLogRecord.id == record_id)
            )
        ).first()
    if row is None:
        raise NotFound(f"No message-log record {record_id}", code="RecordNotFound")
    record, ts = row
    return LogRecordDetail(
        summary=_summary(record, ts),
        signature_xml=record.signature_xml,
        signer_cert_sha256=record.signer_cert_sha256,
        batch_signature=record.hash_chain is not None,
        message=record.message if with_message else None,
        attachment=record.attachment if with_message else None,
    )


async def classify_outcomes(db: Database, *, limit: int = 1000) -> int:
    """Record the outcome of records that have none yet but hold a message.

    Args:
        db: the security server's database.
        limit: at most this many records per call.

    Returns:
        How many records were classified.
    """
    m = MessageLogRecord
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(m.id, m.message)
                .where(m.fault.is_(None), m.message.is_not(None))
                .order_by(m.id)
                .limit(limit)
            )
        ).all()
        for record_id, message in rows:
            if message is None:  # excluded by the query
                continue
            outcome, code = message_outcome(message)
            await session.execute(
                update(m)
                .where(m.id == record_id, m.fault.is_(None))
                .values(fault=outcome is Outcome.FAULT, fault_code=code)
            )
    return len(rows)
