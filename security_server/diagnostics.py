"""Diagnostics for operators: global configuration, OCSP state, TSA reachability.

These report state; they make no trust decision (the proxies use
:mod:`security_server.certstatus`). A failure is reported in the result
(``error``), so one unreachable TSA does not hide the others.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import aiohttp
from sqlalchemy import func, select

from jplink.clients.http import map_transport_errors, read_body
from jplink.errors import JPLinkError, TimestampError, TransportError
from jplink.globalconf import SharedParameters
from jplink.security.tsp import (
    build_timestamp_request,
    new_nonce,
    verify_timestamp_response,
)
from jplink.storage import Database

from .audit import aware
from .confclient import ConfStatus, global_configuration_status
from .config import SecurityServerConfig
from .models import Certificate, MessageLogRecord, MessageTimestamp, OcspResponse
from .timestamper import TimestampingHealth

__all__ = [
    "CertificateDiagnostics",
    "MessageLogDiagnostics",
    "TsaDiagnostics",
    "certificate_diagnostics",
    "globalconf_diagnostics",
    "message_log_diagnostics",
    "tsa_diagnostics",
]

_MAX_TSA_RESPONSE = 256 * 1024


def globalconf_diagnostics(
    config: SecurityServerConfig, *, now: dt.datetime
) -> ConfStatus:
    """The saved global configuration's state and expiry date.

    Raises:
        NotFound: code ``ServerNotInitialized``.
        GlobalConfError: nothing saved yet, or the saved copy is damaged.
    """
    return global_configuration_status(config, now=now)


@dataclass(frozen=True, slots=True)
class CertificateDiagnostics:
    """One certificate's OCSP state.

    Attributes:
        sha256: hex SHA-256 of the certificate.
        usage: ``auth`` or ``sign``.
        member: the signing member (None for auth).
        active: whether it is in use.
        ocsp_status: last authentic verdict (good, revoked, unknown) or None.
        this_update: thisUpdate of the cached response.
        age_seconds: ``now - this_update``.
        fresh: the cached response is ``good`` and younger than
            ``ocspFreshnessSeconds`` (None when that is unknown).
        checked_at: when the refresher last received an answer.
    """

    sha256: str
    usage: str
    member: str | None
    active: bool
    ocsp_status: str | None
    this_update: dt.datetime | None
    age_seconds: float | None
    fresh: bool | None
    checked_at: dt.datetime | None


async def certificate_diagnostics(
    db: Database, *, now: dt.datetime, freshness_seconds: int | None = None
) -> tuple[CertificateDiagnostics, ...]:
    """The OCSP status and age of every certificate on the token.

    Args:
        db: the server's database.
        now: the reference time for ages.
        freshness_seconds: ``ocspFreshnessSeconds`` of the global
            configuration, to say whether each response is still fresh.

    Raises:
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        rows = await session.execute(
            select(Certificate, OcspResponse)
            .outerjoin(
                OcspResponse, OcspResponse.cert_sha256 == Certificate.cert_sha256
            )
            .order_by(Certificate.id)
        )
        found = []
        for cert, cached in rows:
            this_update = aware(cached.this_update) if cached else None
            age = (now - this_update).total_seconds() if this_update else None
            fresh = None
            if freshness_seconds is not None:
                fresh = (
                    cert.ocsp_status == "good"
                    and age is not None
                    and age <= freshness_seconds
                )
            found.append(
                CertificateDiagnostics(
                    sha256=cert.cert_sha256,
                    usage=cert.usage,
                    member=cert.member,
                    active=cert.active,
                    ocsp_status=cert.ocsp_status,
                    this_update=this_update,
                    age_seconds=age,
                    fresh=fresh,
                    checked_at=aware(cert.ocsp_checked_at)
                    if cert.ocsp_checked_at
                    else None,
                )
            )
    return tuple(found)


@dataclass(frozen=True, slots=True)
class TsaDiagnostics:
    """Whether one approved TSA answered a time-stamp request correctly.

    Attributes:
        name: the TSA's name in the global configuration.
        url: its address.
        ok: a token came back and verified against the TSA's certificate.
        gen_time: the token's genTime (ok only).
        duration_seconds: how long the round trip took.
        error: ``<code>: <message>`` when not ok.
    """

    name: str
    url: str
    ok: bool
    duration_seconds: float
    gen_time: dt.datetime | None = None
    error: str | None = None


async def _ask_tsa(
    session: aiohttp.ClientSession, url: str, der: bytes, timeout: float
) -> bytes:
    with map_transport_errors(url):
        async with session.post(
            url,
            data=der,
            headers={"Content-Type": "application/timestamp-query"},
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as resp:
            body = await read_body(resp, limit=_MAX_TSA_RESPONSE, url=url)
            status = resp.status
    if status != 200:
        raise TransportError(
            f"{url} answered with HTTP {status}", url=url, status=status
        )
    return body


async def tsa_diagnostics(
    conf: SharedParameters,
    *,
    now: dt.datetime,
    session: aiohttp.ClientSession,
    timeout: float = 10.0,
) -> tuple[TsaDiagnostics, ...]:
    """Send a time-stamp request (with a nonce) to each approved TSA.

    Args:
        conf: the current shared parameters (``approvedTSA``).
        now: the reference time (genTime must be close to it).
        session: the caller's aiohttp session.
        timeout: seconds allowed per TSA.

    Returns:
        One result per TSA, in configuration order.
    """
    results = []
    for tsa in conf.approved_tsas:
        request = build_timestamp_request(
            f"jplink diagnostics {now.isoformat()}".encode(), nonce=new_nonce()
        )
        started = time.monotonic()
        try:
            body = await _ask_tsa(session, tsa.url, request.der, timeout)
            verified = verify_timestamp_response(
                body, request=request, trusted_tsa_certs=(tsa.cert,), now=now
            )
        except JPLinkError as exc:
            results.append(
                TsaDiagnostics(
                    tsa.name,
                    tsa.url,
                    False,
                    time.monotonic() - started,
                    error=f"{exc.code}: {exc.message}",
                )
            )
            continue
        results.append(
            TsaDiagnostics(
                tsa.name,
                tsa.url,
                True,
                time.monotonic() - started,
                gen_time=verified.gen_time,
            )
        )
    return tuple(results)


@dataclass(frozen=True, slots=True)
class MessageLogDiagnostics:
    """The message log's time-stamping state (PROTOCOLS.md §12.2).

    Attributes:
        pending: records without a time-stamp.
        oldest_pending_at: when the oldest of them was logged.
        last_timestamp_at: when the newest time-stamp was stored.
        last_tsa_url: the TSA that gave it.
        failing_since: when the running time-stamper started failing (only
            known inside ``jplink ss serve``; None elsewhere).
        last_error: the time-stamper's last error, likewise.
        refusing: whether the proxies refuse exchanges now
            (``timestamper_failed``).
    """

    pending: int
    oldest_pending_at: dt.datetime | None
    last_timestamp_at: dt.datetime | None
    last_tsa_url: str | None
    failing_since: dt.datetime | None = None
    last_error: str | None = None
    refusing: bool = False


async def message_log_diagnostics(
    db: Database,
    *,
    now: dt.datetime,
    health: TimestampingHealth | None = None,
) -> MessageLogDiagnostics:
    """How far time-stamping has got, and whether exchanges are refused.

    Args:
        db: the security server's database.
        now: the reference time.
        health: the running time-stamper's health (``jplink ss serve``).

    Returns:
        The state.

    Raises:
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        pending = await session.scalar(
            select(func.count(MessageLogRecord.id)).where(
                MessageLogRecord.timestamp_id.is_(None)
            )
        )
        oldest = await session.scalar(
            select(func.min(MessageLogRecord.logged_at)).where(
                MessageLogRecord.timestamp_id.is_(None)
            )
        )
        last = (
            await session.execute(
                select(MessageTimestamp.created_at, MessageTimestamp.tsa_url)
                .order_by(MessageTimestamp.id.desc())
                .limit(1)
            )
        ).first()
    state = health.state() if health is not None else None
    refusing = False
    if health is not None:
        try:
            health.check(now)
        except TimestampError:
            refusing = True
    return MessageLogDiagnostics(
        pending=int(pending or 0),
        oldest_pending_at=None if oldest is None else aware(oldest),
        last_timestamp_at=None if last is None else aware(last[0]),
        last_tsa_url=None if last is None else last[1],
        failing_since=None if state is None else state.failing_since,
        last_error=None if state is None else state.last_error,
        refusing=refusing,
    )
