"""Supervising the exchange listeners of ``jplink ss serve``.

:class:`Supervisor` starts the exchange (client proxy, server proxy, OCSP for
peers, OCSP refresher; :func:`security_server.serve.running`) once
:func:`exchange_blocker` finds nothing missing, holds it while the token stays
logged in, and reports through the :class:`~.runtime.ServerRuntime` why it
runs or not. :func:`download_globalconf_periodically` is X-Road's
configuration client: a download every ``[globalconf]
refresh_interval_seconds``, which also moves registration states and may let
the exchange start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from jplink.errors import GlobalConfError, JPLinkError, NotFound, Unauthenticated
from jplink.security.certs import CertProfile
from jplink.storage import Database

from ..certificates import list_certificates
from ..confclient import download_global_configuration
from ..config import SecurityServerConfig
from ..exchange_ports import SavedConfProvider
from ..identity import get_identity
from .runtime import ExchangeState, ServerRuntime

__all__ = ["Supervisor", "download_globalconf_periodically", "exchange_blocker"]

_log = logging.getLogger("security_server.serve")


async def exchange_blocker(
    config: SecurityServerConfig,
    db: Database,
    runtime: ServerRuntime,
    *,
    now: dt.datetime,
) -> str | None:
    """Why the exchange cannot start yet, or None when it may be tried.

    Cheap checks only (no network): initialised, token logged in, a valid
    global configuration, and an active authentication certificate that it
    lists for this server. :func:`running` then makes the full check (chain,
    fresh OCSP) and fails closed.
    """
    try:
        server = (await get_identity(db)).server_id
    except NotFound:
        return "the server is not initialised (POST /api/v1/initialization)"
    if not runtime.login.is_logged_in:
        return "the software token is not logged in (PUT /api/v1/tokens/0/login)"
    provider = SavedConfProvider(config.globalconf.directory, server.instance)
    try:
        shared = provider.current(now=now)
    except GlobalConfError as exc:
        return f"no usable global configuration: {exc.message}"
    try:
        listed = {h.hex() for h in shared.server(server).auth_cert_hashes}
    except NotFound:
        return f"the global configuration does not list {server} yet"
    usable = [
        c
        for c in await list_certificates(db)
        if c.usage is CertProfile.AUTH and c.active and c.sha256 in listed
    ]
    if not usable:
        return (
            "no active authentication certificate is registered for "
            f"{server} in the global configuration"
        )
    return None


class Supervisor:
    """Starts the exchange when it can, stops it on logout or shutdown."""

    def __init__(
        self,
        config: SecurityServerConfig,
        db: Database,
        runtime: ServerRuntime,
        *,
        start: Callable[[str], AbstractAsyncContextManager[object]],
        clock: Callable[[], dt.datetime],
        unattended_pin: str | None,
    ) -> None:
        self._config, self._db, self._runtime = config, db, runtime
        self._start, self._clock = start, clock
        self._pin = unattended_pin
        self.stopping = False

    def _report(self, state: ExchangeState, reason: str) -> None:
        if self._runtime.report(state, reason, now=self._clock()):
            if state is ExchangeState.RUNNING:
                _log.info("exchange listeners started")
            else:
                _log.warning("exchange listeners not running: %s", reason)

    async def _unattended_login(self) -> None:
        if self._pin is None or self._runtime.login.is_logged_in:
            return
        try:
            await self._runtime.login.login(self._db, self._pin)
        except Unauthenticated as exc:
            _log.error("the PIN of [exchange] pin_file is refused: %s", exc.message)
            self._pin = None  # never retried: a wrong PIN stays wrong
        except NotFound:
            pass  # not initialised yet: retried on the next check

    async def _run_exchange(self) -> str:
        pin = self._runtime.login.unlocked().pin
        try:
            async with self._start(pin):
                self._report(ExchangeState.RUNNING, "listening")
                while not self.stopping and self._runtime.login.is_logged_in:
                    await self._runtime.wait(self._config.admin.exchange_check_seconds)
        except JPLinkError as exc:
            return f"the exchange could not start: {exc.message}"
        except OSError as exc:
            return f"the exchange could not listen: {exc}"
        if self.stopping:
            return "the server is stopping"
        return "the software token was logged out"

    async def run(self) -> None:
        """Check, start, hold, repeat until :attr:`stopping`."""
        interval = self._config.admin.exchange_check_seconds
        while not self.stopping:
            await self._unattended_login()
            try:
                reason = await exchange_blocker(
                    self._config, self._db, self._runtime, now=self._clock()
                )
            except JPLinkError as exc:
                reason = f"the state could not be read: {exc.message}"
            if reason is None:
                reason = await self._run_exchange()
            self._report(ExchangeState.WAITING, reason)
            if not self.stopping:
                await self._runtime.wait(interval)


async def download_globalconf_periodically(
    config: SecurityServerConfig,
    db: Database,
    runtime: ServerRuntime,
    clock: Callable[[], dt.datetime],
) -> None:
    """Download the global configuration every ``refresh_interval_seconds``
    (X-Road's configuration client: 60 s), once the server is initialised;
    each download also moves registration states (``registration.sync_states``)
    and may let the exchange start."""
    while True:
        try:
            await get_identity(db)
            await download_global_configuration(
                db, config, "system:globalconf-refresh", now=clock(), record_audit=False
            )
            runtime.poke()
        except NotFound:
            pass  # not initialised yet
        except JPLinkError as exc:
            _log.warning("global configuration download failed: %s", exc.message)
        await asyncio.sleep(config.globalconf.refresh_interval_seconds)
