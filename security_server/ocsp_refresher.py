"""Fetching OCSP responses for this server's own certificates (PROTOCOLS.md §8).

"The signer process fetches OCSP for its own registered, active certs (auth
and signing, plus intermediates) every ``ocspFetchInterval`` seconds." Each
certificate's path to an approved CA is built from the global configuration;
for every link but the top CA a request goes by HTTP POST to the responders
the configuration lists for the issuer, and the answer is checked with
:func:`jplink.security.ocsp.verify_ocsp_response`.

Only authentic answers are cached: ``good`` (fresh), ``revoked`` and
``unknown`` ones signed by an authorised responder for that certificate. A
failed download, a bad signature or a stale answer is reported and changes
nothing, so the last good response stays until it goes stale, and then
:class:`~security_server.certstatus.CertificateStatus` refuses to sign
(fail closed). Each leaf certificate's ``ocsp_*`` columns record the verdict.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import select

from jplink.errors import JPLinkError, OcspUnknownStatus, RevokedCertificate
from jplink.globalconf import SharedParameters
from jplink.security.ocsp import build_ocsp_request, verify_ocsp_response
from jplink.storage import Database
from jplink.tasks import cancel_and_wait

from .certstatus import ConfProvider
from .config import SecurityServerConfig
from .models import Certificate
from .ocsp_cache import cert_sha256, responder_certs, single_for, store_response
from .ocsp_checks import freshness, path_of
from .peer_ocsp_client import fetch_from_responder
from .states import CertStatus

__all__ = ["FetchOutcome", "OcspRefresher", "RefreshReport"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """What one refresh learnt about one certificate.

    Attributes:
        cert_sha256: hex SHA-256 of the certificate.
        subject: its subject (RFC 4514).
        status: ``good``, ``revoked``, ``unknown`` (authentic answers) or
            ``failed`` (nothing usable was received; the cache is unchanged).
        stored: whether the answer replaced the cached one.
        this_update: the answer's thisUpdate, when there is one.
        error: why it failed (``failed`` only).
    """

    cert_sha256: str
    subject: str
    status: str
    stored: bool = False
    this_update: dt.datetime | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """The outcome of one refresh, one entry per certificate asked about."""

    at: dt.datetime
    outcomes: tuple[FetchOutcome, ...]

    @property
    def failed(self) -> tuple[FetchOutcome, ...]:
        """The certificates for which nothing usable was received."""
        return tuple(o for o in self.outcomes if o.status == "failed")


@dataclass(frozen=True, slots=True)
class _Answer:
    cert: x509.Certificate
    der: bytes
    status: str


class OcspRefresher:
    """Keeps the OCSP responses of this server's certificates fresh.

    Args:
        db: the server's database.
        config: the server's configuration (``[ocsp]`` table).
        conf: returns the current verified global configuration.
        session: an aiohttp session; a short-lived one per refresh when None.
        on_change: called after a refresh that stored something (e.g.
            :meth:`CertificateStatus.invalidate`).
    """

    def __init__(
        self,
        db: Database,
        config: SecurityServerConfig,
        conf: ConfProvider,
        *,
        session: aiohttp.ClientSession | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._settings = config.ocsp
        self._timeout = config.timeouts.connect_seconds
        self._conf = conf
        self._session = session
        self._on_change = on_change

    def interval(self, conf: SharedParameters) -> float:
        """Seconds between refreshes: the configured fetch interval, at most
        half of ``ocspFreshnessSeconds`` so that a response is replaced well
        before it goes stale."""
        half = freshness(conf).total_seconds() / 2
        return max(1.0, min(float(self._settings.fetch_interval_seconds), half))

    async def refresh_now(self, *, now: dt.datetime) -> RefreshReport:
        """Fetch, verify and cache responses for every own active certificate.

        Args:
            now: the validation time.

        Returns:
            One outcome per certificate (intermediate CAs included).

        Raises:
            GlobalConfExpired: no current global configuration.
            StorageError: the database failed.
        """
        conf = self._conf().shared
        async with self._db.transaction() as session:
            rows = await session.execute(
                select(Certificate.cert_der).where(
                    Certificate.active.is_(True),
                    Certificate.status != CertStatus.DISABLED.value,
                )
            )
            leaves = [x509.load_der_x509_certificate(der) for der in rows.scalars()]
        outcomes: list[FetchOutcome] = []
        links: dict[str, tuple[x509.Certificate, x509.Certificate]] = {}
        for leaf in leaves:
            try:
                path = path_of(leaf, conf, now)
            except JPLinkError as exc:
                outcomes.append(_failed(leaf, f"{exc.code}: {exc.message}"))
                continue
            for link, issuer in itertools.pairwise(path):
                links.setdefault(cert_sha256(link), (link, issuer))
        if self._session is None:
            async with aiohttp.ClientSession() as own:
                results = await self._fetch_all(own, conf, links, now)
        else:
            results = await self._fetch_all(self._session, conf, links, now)
        answers = [r for r in results if isinstance(r, _Answer)]
        outcomes += [r for r in results if isinstance(r, FetchOutcome)]
        outcomes += await self._store(answers, now)
        if any(o.stored for o in outcomes) and self._on_change is not None:
            self._on_change()
        return RefreshReport(now, tuple(outcomes))

    async def _fetch_all(
        self,
        session: aiohttp.ClientSession,
        conf: SharedParameters,
        links: dict[str, tuple[x509.Certificate, x509.Certificate]],
        now: dt.datetime,
    ) -> list[_Answer | FetchOutcome]:
        return list(
            await asyncio.gather(
                *(
                    self._fetch(session, conf, cert, issuer, now)
                    for cert, issuer in links.values()
                )
            )
        )

    async def _fetch(
        self,
        session: aiohttp.ClientSession,
        conf: SharedParameters,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        now: dt.datetime,
    ) -> _Answer | FetchOutcome:
        nonce = secrets.token_bytes(16) if self._settings.nonce else None
        request = build_ocsp_request(
            cert, issuer, hash_algorithm=hashes.SHA256(), nonce=nonce
        )
        errors: list[str] = []
        try:
            responders = conf.ocsp_responders(issuer)
        except JPLinkError as exc:
            return _failed(cert, exc.message)
        for responder in responders:
            try:
                der = await fetch_from_responder(
                    session, responder.url, request, timeout=self._timeout
                )
                verify_ocsp_response(
                    der,
                    cert=cert,
                    issuer=issuer,
                    now=now,
                    max_age=freshness(conf),
                    nonce=nonce,
                    trusted_responders=responder_certs(conf, issuer),
                )
                return _Answer(cert, der, "good")
            except RevokedCertificate:
                # Raised only after the signature, the responder and the
                # CertID were checked: an authentic answer.
                return _Answer(cert, der, "revoked")
            except OcspUnknownStatus:
                return _Answer(cert, der, "unknown")
            except JPLinkError as exc:
                errors.append(f"{responder.url}: {exc.code}: {exc.message}")
        if not responders:
            errors.append("the global configuration lists no OCSP responder")
        _log.warning(
            "OCSP refresh failed for %s: %s",
            cert.subject.rfc4514_string(),
            "; ".join(errors),
        )
        return _failed(cert, "; ".join(errors))

    async def _store(
        self, answers: list[_Answer], now: dt.datetime
    ) -> list[FetchOutcome]:
        outcomes: list[FetchOutcome] = []
        async with self._db.transaction() as session:
            for answer in answers:
                single = single_for(answer.der, answer.cert)
                assert single is not None  # verified to name the certificate
                stored = await store_response(session, answer.cert, answer.der, now=now)
                digest = cert_sha256(answer.cert)
                row = (
                    await session.execute(
                        select(Certificate).where(Certificate.cert_sha256 == digest)
                    )
                ).scalar_one_or_none()
                if row is not None and stored:
                    row.ocsp_status = answer.status
                    row.ocsp_this_update = single.this_update
                    row.ocsp_next_update = single.next_update
                if row is not None:
                    row.ocsp_checked_at = now
                outcomes.append(
                    FetchOutcome(
                        digest,
                        answer.cert.subject.rfc4514_string(),
                        answer.status,
                        stored=stored,
                        this_update=single.this_update,
                    )
                )
        return outcomes

    async def run(self) -> None:
        """Refresh forever (cancel the task to stop)."""
        while True:
            delay = float(self._settings.retry_seconds)
            try:
                report = await self.refresh_now(now=dt.datetime.now(dt.UTC))
                if not report.failed:
                    delay = self.interval(self._conf().shared)
            except JPLinkError as exc:
                _log.warning("OCSP refresh failed: %s: %s", exc.code, exc.message)
            await asyncio.sleep(delay)

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        """A ``cleanup_ctx`` entry running :meth:`run` while the app serves."""
        del app
        task = asyncio.create_task(self.run(), name="ocsp-refresher")
        try:
            yield
        finally:
            await cancel_and_wait(task)


def _failed(cert: x509.Certificate, error: str) -> FetchOutcome:
    return FetchOutcome(
        cert_sha256(cert), cert.subject.rfc4514_string(), "failed", error=error
    )
