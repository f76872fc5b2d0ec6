"""The OCSP responder service: request bytes in, response bytes out.

It ties the pure parts together (parse, authorise, look up, sign) and decides
which ``OCSPResponseStatus`` each failure becomes. Statuses come from a
:class:`StatusLookup` (the CA database in production, a dict in tests); time
comes in as ``now``.

Pre-produced responses (RFC 5019 §2.1.1 permits them): a response to a
request *without* a nonce is kept for a short while and served again to the
same CertIDs, but only after the database has been asked again and returned
the very same statuses. A revocation is therefore visible on the next request;
what is saved is the signature, which dominates the cost of a response.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from jplink.errors import AccessDenied, JPLinkError, MalformedMessage, StorageError
from jplink.security.ocsp import OcspResponseStatus

from .request import OcspRequest, parse_ocsp_request
from .responder import CertStatusAnswer, OcspResponder, error_response

__all__ = [
    "MALFORMED_REQUEST",
    "OcspService",
    "PresignedCache",
    "StatusLookup",
]

log = logging.getLogger(__name__)

MALFORMED_REQUEST = error_response(OcspResponseStatus.MALFORMED_REQUEST)
_UNAUTHORIZED = error_response(OcspResponseStatus.UNAUTHORIZED)
_TRY_LATER = error_response(OcspResponseStatus.TRY_LATER)
_INTERNAL_ERROR = error_response(OcspResponseStatus.INTERNAL_ERROR)


class StatusLookup(Protocol):
    """Where statuses come from: one answer per serial, in order."""

    async def __call__(self, serials: Sequence[int]) -> Sequence[CertStatusAnswer]:
        """Look the serials up.

        Raises:
            StorageError: the store failed.
        """
        ...


@dataclass(frozen=True, slots=True)
class _Presigned:
    answers: tuple[CertStatusAnswer, ...]
    this_update: dt.datetime
    der: bytes


class PresignedCache:
    """Signed responses to nonce-less requests, keyed by their CertIDs.

    Args:
        reuse_for: how long after its thisUpdate a response may be served again.
        max_entries: bound on memory; the oldest entry goes first.
    """

    def __init__(self, *, reuse_for: dt.timedelta, max_entries: int = 4096) -> None:
        self._reuse_for = reuse_for
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, _Presigned] = OrderedDict()

    @staticmethod
    def key(request: OcspRequest) -> bytes:
        """The cache key of a request: its CertIDs, in order."""
        return b"".join(query.cert_id_der for query in request.queries)

    def get(
        self, key: bytes, answers: Sequence[CertStatusAnswer], now: dt.datetime
    ) -> bytes | None:
        """A stored response for the same CertIDs and statuses, still fresh."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.answers != tuple(answers) or not (
            entry.this_update <= now < entry.this_update + self._reuse_for
        ):
            return None
        return entry.der

    def put(
        self,
        key: bytes,
        answers: Sequence[CertStatusAnswer],
        now: dt.datetime,
        der: bytes,
    ) -> None:
        """Store a freshly signed response."""
        self._entries[key] = _Presigned(tuple(answers), now.replace(microsecond=0), der)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


class OcspService:
    """Answer OCSP requests for one issuing CA.

    Args:
        responder: the signing core.
        lookup: the status source.
        cache: pre-produced responses for nonce-less requests, or None.
    """

    def __init__(
        self,
        responder: OcspResponder,
        lookup: StatusLookup,
        *,
        cache: PresignedCache | None = None,
    ) -> None:
        self._responder = responder
        self._lookup = lookup
        self._cache = cache

    async def answer(self, body: bytes, *, now: dt.datetime) -> bytes:
        """The DER ``OCSPResponse`` for the request ``body``.

        Never raises for bad input: every failure becomes an unsigned error
        response (RFC 6960 §2.3): ``malformedRequest`` for bytes that are not
        an acceptable request, ``unauthorized`` for a CertID of another issuer,
        ``tryLater`` when the database fails, ``internalError`` otherwise.

        Args:
            body: the request bytes (POST body or decoded GET path).
            now: the responder's time (aware).

        Returns:
            DER bytes for ``application/ocsp-response``.
        """
        try:
            request = parse_ocsp_request(body)
        except MalformedMessage as exc:
            log.info("OCSP malformedRequest: %s", exc.message)
            return MALFORMED_REQUEST
        try:
            self._responder.authorize(request)
            answers = await self._lookup([q.serial_number for q in request.queries])
            return self._signed(request, answers, now)
        except AccessDenied as exc:
            log.info("OCSP unauthorized: %s", exc.message)
            return _UNAUTHORIZED
        except StorageError as exc:
            log.warning("OCSP tryLater: %s", exc.message)
            return _TRY_LATER
        except JPLinkError as exc:
            log.error("OCSP internalError: %s: %s", exc.code, exc.message)
            return _INTERNAL_ERROR

    def _signed(
        self,
        request: OcspRequest,
        answers: Sequence[CertStatusAnswer],
        now: dt.datetime,
    ) -> bytes:
        cache = self._cache if request.nonce_extension is None else None
        if cache is None:
            return self._responder.sign_response(request, answers, now=now)
        key = cache.key(request)
        der = cache.get(key, answers, now)
        if der is None:
            der = self._responder.sign_response(request, answers, now=now)
            cache.put(key, answers, now, der)
        return der
