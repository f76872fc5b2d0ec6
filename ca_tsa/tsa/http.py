"""The thin aiohttp layer of the TSA: RFC 3161 over HTTP (RFC 3161 §3.4).

``POST /`` (and ``/tsa``) with ``application/timestamp-query`` answers
``application/timestamp-reply``. Every refusal is a TimeStampResp with status
rejection and a failInfo bit, sent with HTTP 200, so any RFC 3161 client can
read why; the decisions themselves live in :mod:`ca_tsa.tsa.query` and
:mod:`ca_tsa.tsa.authority`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from jplink.errors import InvalidRequest, JPLinkError
from jplink.security.tsp import FailInfo

from ..appkeys import CONFIG, DATABASE, MATERIAL
from ..repositories import reserve_tsa_serials
from .authority import TimestampAuthority, build_rejection
from .query import parse_timestamp_query
from .serials import SerialAllocator

__all__ = ["AUTHORITY", "CLOCK", "SERIALS", "setup_tsa"]

log = logging.getLogger(__name__)

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"

AUTHORITY = web.AppKey("tsa_authority", TimestampAuthority)
SERIALS = web.AppKey("tsa_serials", SerialAllocator)
#: The clock for genTime; set it before start-up to inject time in tests.
CLOCK: web.AppKey[Callable[[], dt.datetime]] = web.AppKey("tsa_clock")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _reply(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=REPLY_TYPE)


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or ``None`` when it is larger than ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = await request.content.read(limit + 1)
    while len(body) <= limit:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            return body
        body += chunk
    return None


async def handle_query(request: web.Request) -> web.Response:
    """Answer one time-stamp query (never with an HTTP error for bad input)."""
    app = request.app
    authority = app[AUTHORITY]
    # RFC 3161 §3.4: the query is sent with this MIME type.
    if request.content_type != QUERY_TYPE:
        return _reply(
            build_rejection(FailInfo.BAD_REQUEST, f"Content-Type must be {QUERY_TYPE}")
        )
    body = await _read_limited(request, app[CONFIG].tsa.max_request_bytes)
    if body is None:
        return _reply(build_rejection(FailInfo.BAD_REQUEST, "request too large"))
    try:
        query = parse_timestamp_query(body, policy_oid=authority.policy_oid)
    except InvalidRequest as exc:
        return _reply(build_rejection(exc.detail["fail_info"], exc.message))
    gen_time = app[CLOCK]()
    cert = authority.tsa_cert
    if not cert.not_valid_before_utc <= gen_time <= cert.not_valid_after_utc:
        # A token the TSA's own certificate does not cover would never verify.
        log.error("the TSA certificate is not valid at %s", gen_time)
        return _reply(
            build_rejection(FailInfo.TIME_NOT_AVAILABLE, "TSA certificate not valid")
        )
    try:
        serial = await app[SERIALS].next()
        return _reply(authority.issue(query, serial=serial, gen_time=gen_time))
    except JPLinkError as exc:
        log.error("time-stamping failed: %s", exc)
    except Exception:
        log.exception("time-stamping failed")
    return _reply(build_rejection(FailInfo.SYSTEM_FAILURE, "time-stamping failed"))


async def _tsa_context(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    material = app[MATERIAL]
    app[AUTHORITY] = TimestampAuthority.create(
        tsa_cert=material.tsa_cert,
        tsa_key=material.tsa_key,
        chain=material.chain,
        policy_oid=config.tsa.policy_oid,
        accuracy_ms=config.tsa.accuracy_ms,
    )
    db = app[DATABASE]

    async def reserve(count: int) -> range:
        return await reserve_tsa_serials(db, count)

    serials = SerialAllocator(reserve)
    app[SERIALS] = serials
    if CLOCK not in app:
        app[CLOCK] = _utc_now
    try:
        yield
    finally:
        await serials.aclose()


def setup_tsa(app: web.Application) -> None:
    """Add the TSA routes and its start-up context to a CA/TSA app.

    Needs ``app[CONFIG]``, and ``app[DATABASE]`` / ``app[MATERIAL]`` filled
    by an earlier ``cleanup_ctx`` entry (see :func:`ca_tsa.app.make_tsa_app`).
    Set ``app[CLOCK]`` before start-up to control genTime.
    """
    app.cleanup_ctx.append(_tsa_context)
    app.router.add_post("/", handle_query)
    app.router.add_post("/tsa", handle_query)
