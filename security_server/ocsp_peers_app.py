"""The OCSP-for-peers listener, port 5577 (PR-MESSTRANSP §5.2, PROTOCOLS.md §5.2).

``GET /?cert=<hex SHA-1>&...&cert_hash=<hex SHA-256>&...`` is answered from
the cache with one ``application/ocsp-response`` part per requested
certificate, in request order
(:func:`jplink.protocol.ocsp_peers.answer_ocsp_peer_request`).
"If any response is missing the server replies 500." ``HEAD /`` is the
heartbeat and answers 200. A malformed query gets 400.

Responses are looked up in the cache by the requested SHA-256; a request
naming a certificate by SHA-1 only (pre-7.4 clients) is matched against the
token's certificates and the CA certificates of the saved global
configuration. The responses are public, signed data that the peer verifies
itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from jplink.clients.globalconf import load_saved_configuration
from jplink.errors import JPLinkError, MalformedMessage, NotFound
from jplink.protocol.ocsp_peers import (
    CertHashes,
    answer_ocsp_peer_request,
    parse_ocsp_peer_request,
)
from jplink.storage import Database

from .config import SecurityServerConfig
from .db import open_database
from .identity import read_anchor
from .models import Certificate
from .ocsp_cache import cached_responses

__all__ = ["DATABASE", "make_ocsp_peers_app"]

_log = logging.getLogger(__name__)

#: The app's database (opened in its cleanup context).
DATABASE = web.AppKey("ocsp_peers_database", Database)
_CONFIG = web.AppKey("ocsp_peers_config", SecurityServerConfig)
_MAX_QUERY = 4096


def _ca_certs(config: SecurityServerConfig) -> tuple[x509.Certificate, ...]:
    # Intermediate CA responses are cached by SHA-256; a request naming them
    # by SHA-1 only (pre-7.4 clients) needs the certificates to match.
    try:
        instance = read_anchor(config).instance_identifier
        loaded = load_saved_configuration(
            config.globalconf.directory, now=dt.datetime.now(dt.UTC), instance=instance
        )
    except JPLinkError:
        return ()
    shared = loaded.shared
    return (*shared.trusted_ca_certs(), *shared.intermediate_ca_certs())


async def _known(
    db: Database, config: SecurityServerConfig, wanted: tuple[CertHashes, ...]
) -> Callable[[CertHashes], bytes | None]:
    digests: dict[CertHashes, str] = {
        h: h.sha256.hex() for h in wanted if h.sha256 is not None
    }
    if len(digests) < len(wanted):  # some named by SHA-1 only
        async with db.transaction() as session:
            rows = await session.execute(select(Certificate.cert_der))
            ders = list(rows.scalars())
        ders += [c.public_bytes(Encoding.DER) for c in _ca_certs(config)]
        by_sha1 = {hashlib.sha1(d, usedforsecurity=False).digest(): d for d in ders}
        for hashes in wanted:
            der = by_sha1.get(hashes.sha1 or b"")
            if hashes.sha256 is None and der is not None:
                digests[hashes] = hashlib.sha256(der).hexdigest()
    async with db.transaction() as session:
        cached = await cached_responses(session, digests.values())
    found = {h: cached[d].response_der for h, d in digests.items() if d in cached}
    return found.get


async def handle_get(request: web.Request) -> web.Response:
    """Answer a peer's request for OCSP responses."""
    query = request.query_string
    if len(query) > _MAX_QUERY:
        return web.Response(status=400, text="query too long")
    try:
        parsed = parse_ocsp_peer_request(query)
    except MalformedMessage as exc:
        return web.Response(status=400, text=exc.message)
    lookup = await _known(
        request.app[DATABASE], request.app[_CONFIG], parsed.certificates
    )
    try:
        answer = answer_ocsp_peer_request(parsed, lookup)
    except NotFound as exc:
        _log.info("OCSP for peers: %s", exc.message)
        return web.Response(status=500, text=exc.message)
    return web.Response(body=answer.body, headers={"Content-Type": answer.content_type})


async def handle_head(request: web.Request) -> web.Response:
    """The heartbeat: 200 with no body."""
    del request
    return web.Response(status=200)


def _resources(
    config: SecurityServerConfig,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        db = await open_database(config.db_url)
        app[DATABASE] = db
        try:
            yield
        finally:
            await db.dispose()

    return resources


def make_ocsp_peers_app(config: SecurityServerConfig) -> web.Application:
    """The OCSP-for-peers application (``[ocsp_responder]`` host and port).

    Args:
        config: the server's configuration (database, global configuration).

    Returns:
        The app; its database is opened in a ``cleanup_ctx`` entry.
    """
    app = web.Application(client_max_size=1024)
    app[_CONFIG] = config
    app.cleanup_ctx.append(_resources(config))
    app.router.add_route("HEAD", "/", handle_head)
    app.router.add_get("/", handle_get, allow_head=False)
    return app
