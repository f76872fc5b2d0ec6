"""The OCSP responder's HTTP binding (RFC 6960 Appendix A): thin handlers.

``POST /ocsp`` takes ``application/ocsp-request`` bodies; ``GET /ocsp/{b64}``
takes the url-encoded base64 of the DER request. Both answer
``application/ocsp-response``. Bad input never raises: it gets an unsigned
``malformedRequest`` response with HTTP 200, except a body larger than
``[ocsp] max_request_bytes``, which is refused unread with HTTP **413** and
the same ``malformedRequest`` body (and the connection is closed).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import urllib.parse
from collections.abc import AsyncIterator, Sequence

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from jplink.errors import StorageError
from jplink.security.ocsp import OcspCertStatus
from jplink.storage import Database

from ..appkeys import CONFIG, DATABASE, MATERIAL
from ..repositories import CertStatusRecord, lookup_statuses
from .responder import GOOD, UNKNOWN, CertStatusAnswer, OcspResponder
from .service import MALFORMED_REQUEST, OcspService, PresignedCache

__all__ = ["OCSP_SERVICE", "DatabaseStatusLookup", "setup_ocsp"]

OCSP_SERVICE = web.AppKey("ocsp_service", OcspService)

REQUEST_TYPE = "application/ocsp-request"
RESPONSE_TYPE = "application/ocsp-response"
#: Longest reuse of a pre-produced response (see :mod:`.service`).
PRESIGNED_REUSE = dt.timedelta(seconds=60)
_PREFIX = "/ocsp/"


def _answer(record: CertStatusRecord | None) -> CertStatusAnswer:
    if record is None:
        return UNKNOWN
    if not record.revoked:
        return GOOD
    return CertStatusAnswer(
        OcspCertStatus.REVOKED,
        revoked_at=record.revoked_at or dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        reason=record.reason,
    )


class DatabaseStatusLookup:
    """Statuses from the CA database: one indexed lookup per serial.

    Runs the repository's query on a bare pooled connection rather than an
    ORM session: the session round trip cost more than the signature.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    async def __call__(self, serials: Sequence[int]) -> Sequence[CertStatusAnswer]:
        """One answer per serial; never-issued (or impossible) serials are unknown.

        Raises:
            StorageError: the database failed.
        """
        try:
            async with self._database.engine.connect() as connection:
                records = await lookup_statuses(connection, serials)
        except SQLAlchemyError as exc:
            raise StorageError(
                "The CA database failed", detail={"error": type(exc).__name__}
            ) from exc
        return [_answer(r) for r in records]


async def _ocsp_context(app: web.Application) -> AsyncIterator[None]:
    config, material = app[CONFIG], app[MATERIAL]
    seconds = config.ocsp.next_update_seconds
    next_update = dt.timedelta(seconds=seconds) if seconds > 0 else None
    responder = OcspResponder.create(
        issuer=material.ca_cert,
        responder_cert=material.ocsp_cert,
        responder_key=material.ocsp_key,
        next_update=next_update,
    )
    reuse = (
        PRESIGNED_REUSE
        if next_update is None
        else min(PRESIGNED_REUSE, next_update / 2)
    )
    app[OCSP_SERVICE] = OcspService(
        responder,
        DatabaseStatusLookup(app[DATABASE]),
        cache=PresignedCache(reuse_for=reuse),
    )
    yield


def setup_ocsp(app: web.Application) -> None:
    """Add the OCSP routes and the context that builds the responder.

    Must be called after the context that sets ``app[CONFIG]``,
    ``app[DATABASE]`` and ``app[MATERIAL]`` was appended.
    """
    app.cleanup_ctx.append(_ocsp_context)
    app.router.add_post("/ocsp", handle_post)
    app.router.add_get(_PREFIX + "{request:.+}", handle_get)


def _reply(der: bytes, *, status: int = 200) -> web.Response:
    return web.Response(body=der, status=status, content_type=RESPONSE_TYPE)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def handle_post(request: web.Request) -> web.Response:
    """``POST /ocsp``: the body is a DER ``OCSPRequest``."""
    limit = request.app[CONFIG].ocsp.max_request_bytes
    if request.content_type != REQUEST_TYPE:
        return _reply(MALFORMED_REQUEST)
    if request.content_length is not None and request.content_length > limit:
        return _too_large()
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            return _too_large()
    return _reply(await request.app[OCSP_SERVICE].answer(bytes(body), now=_now()))


def _too_large() -> web.Response:
    response = _reply(MALFORMED_REQUEST, status=413)
    response.force_close()  # the rest of the body is never read
    return response


async def handle_get(request: web.Request) -> web.Response:
    """``GET /ocsp/{url-encoded base64 DER}`` (RFC 6960 Appendix A.1)."""
    raw = request.rel_url.raw_path[len(_PREFIX) :]
    try:
        der = base64.b64decode(urllib.parse.unquote(raw), validate=True)
    except (binascii.Error, ValueError):
        return _reply(MALFORMED_REQUEST)
    if len(der) > request.app[CONFIG].ocsp.max_request_bytes:
        return _reply(MALFORMED_REQUEST)
    return _reply(await request.app[OCSP_SERVICE].answer(der, now=_now()))
