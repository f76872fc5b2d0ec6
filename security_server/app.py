"""The resources the proxies share, and the server proxy's TLS.

:class:`ExchangeResources` owns everything with a lifetime: the database, the
token login (PIN given at start), the global-configuration provider, the
certificate-status service, the batch signer, the message-log writer, the
outbound pools. :mod:`.proxy_listener` serves the proxies with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from jplink.clients.http11 import Http11Pool
from jplink.errors import ConfigurationError
from jplink.security.tls import server_ssl_context
from jplink.storage import Database
from jplink.tasks import cancel_and_wait

from .certstatus import CertificateStatus
from .client_proxy import ClientProxy
from .config import SecurityServerConfig
from .db import open_database
from .exchange_access import ServerConfView
from .exchange_is_auth import IsAuthView
from .exchange_metaservices import Metaservices
from .exchange_ports import SavedConfProvider
from .identity import get_identity
from .messagelog import MessageLogWriter, open_message_log_writer
from .peer_client import PeerTransport
from .server_proxy import ServerProxy
from .signer import BatchSigner
from .softtoken import TokenLogin
from .timestamper import oldest_pending
from .timestamper_task import running_timestamper
from .timestamping_health import PendingRecordsHealth

__all__ = [
    "ExchangeResources",
    "open_resources",
    "read_pin_file",
    "resolve_pin",
    "server_tls_context",
]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class ExchangeResources:
    """What the proxies of one security server share."""

    config: SecurityServerConfig
    db: Database
    login: TokenLogin
    conf: SavedConfProvider
    certstatus: CertificateStatus
    signer: BatchSigner
    log: MessageLogWriter
    serverconf: ServerConfView
    client_proxy: ClientProxy
    server_proxy: ServerProxy


def read_pin_file(path: Path) -> str:
    """The PIN: the first line of ``path``.

    Raises:
        ConfigurationError: the file cannot be read or is empty.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"Cannot read the PIN file {path}") from exc
    pin = text.splitlines()[0] if text else ""
    if not pin:
        raise ConfigurationError(f"The PIN file {path} is empty")
    return pin


def resolve_pin(config: SecurityServerConfig, pin: str | None) -> str:
    """``pin`` when given, else the first line of ``[exchange] pin_file``.

    Raises:
        ConfigurationError: neither is set, or the PIN file is unreadable.
    """
    if pin is not None:
        return pin
    if config.exchange.pin_file is None:
        raise ConfigurationError("Give the token PIN ([exchange] pin_file)")
    return read_pin_file(config.exchange.pin_file)


@contextlib.asynccontextmanager
async def open_resources(
    config: SecurityServerConfig,
    *,
    pin: str | None = None,
    clock: Callable[[], dt.datetime] = _utcnow,
    worker: bool = False,
) -> AsyncIterator[ExchangeResources]:
    """Open everything the proxies need; close it all on exit.

    Args:
        config: the instance configuration.
        pin: the token PIN; else read from ``exchange.pin_file``.
        clock: the current time (tests pass a fixed or shifted clock).
        worker: for a worker process (``[exchange] workers``): no
            time-stamper runs here; time-stamping health is read from the
            database (:class:`~.timestamping_health.PendingRecordsHealth`).

    Yields:
        The shared resources.

    Raises:
        ConfigurationError: no PIN, or an unreadable PIN file.
        NotFound: the server is not initialised or the token not created.
        Unauthenticated: code ``PinIncorrect``.
        StorageError: the database failed.
    """
    settings = config.exchange
    pin = resolve_pin(config, pin)
    db = await open_database(config.db_url)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(db.dispose)
        info = await get_identity(db)
        login = TokenLogin()
        await login.login(db, pin)
        stack.callback(login.logout)
        conf = SavedConfProvider(
            config.globalconf.directory,
            info.server_id.instance,
            check_seconds=settings.globalconf_check_seconds,
        )
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        )
        certstatus = CertificateStatus(
            db,
            config,
            login,
            conf.loaded,
            session=session,
        )
        signer = BatchSigner(certstatus, clock=clock, batching=settings.batch_signing)
        stack.push_async_callback(signer.close)
        if worker:
            health = PendingRecordsHealth(
                config.message_log.acceptable_timestamp_failure_period_seconds,
                lambda: oldest_pending(db),
            )
            await health.refresh()
            stack.push_async_callback(
                cancel_and_wait, asyncio.create_task(health.run(), name="log-health")
            )
            log = open_message_log_writer(db, config.message_log, health=health)
        else:
            stamper = await stack.enter_async_context(
                running_timestamper(config, db, conf, session, clock=clock)
            )
            log = open_message_log_writer(db, config.message_log, timestamper=stamper)
        stack.push_async_callback(log.close)
        serverconf = ServerConfView(db, cache_seconds=settings.serverconf_cache_seconds)
        peers = PeerTransport(
            certstatus,
            clock=clock,
            connect_timeout=config.timeouts.connect_seconds,
            read_timeout=config.timeouts.read_seconds,
            peer_cache_seconds=settings.peer_cache_seconds,
        )
        stack.push_async_callback(peers.close)
        services = Http11Pool()  # kept-alive connections to the services
        stack.callback(services.close)
        yield ExchangeResources(
            config=config,
            db=db,
            login=login,
            conf=conf,
            certstatus=certstatus,
            signer=signer,
            log=log,
            serverconf=serverconf,
            client_proxy=ClientProxy(
                conf=conf,
                serverconf=serverconf,
                certstatus=certstatus,
                signer=signer,
                peers=peers,
                log=log,
                clock=clock,
                is_auth=IsAuthView(db, cache_seconds=settings.serverconf_cache_seconds),
            ),
            server_proxy=ServerProxy(
                server_id=info.server_id,
                conf=conf,
                serverconf=serverconf,
                certstatus=certstatus,
                signer=signer,
                log=log,
                http=services,
                clock=clock,
                peer_cache_seconds=settings.peer_cache_seconds,
                metaservices=Metaservices(db, conf),
            ),
        )


async def server_tls_context(
    resources: ExchangeResources, now: dt.datetime
) -> ssl.SSLContext:
    """The server proxy's TLS: our auth certificate, peers from approved CAs.

    Raises:
        JPLinkError: no usable authentication certificate at ``now``.
    """
    auth = await resources.certstatus.auth_material(now=now)
    shared = resources.conf.current(now=now)
    return server_ssl_context(
        (auth.cert, *auth.chain),
        auth.key,
        client_ca_certs=(*shared.trusted_ca_certs(), *shared.intermediate_ca_certs()),
    )
