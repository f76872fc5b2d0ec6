"""Downloading and inspecting this server's global configuration.

Uses the anchor saved by ``init`` and :mod:`jplink.clients.globalconf` (which
verifies the signed directory and files before saving anything) with the
directory and timeout from ``ss.toml``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import aiohttp

from jplink.clients.globalconf import (
    LoadedConfiguration,
    fetch_global_configuration,
    load_saved_configuration,
)
from jplink.errors import GlobalConfExpired
from jplink.storage import Database

from . import audit
from .config import SecurityServerConfig
from .identity import get_identity, read_anchor
from .registration import sync_states

__all__ = ["ConfStatus", "download_global_configuration", "global_configuration_status"]


@dataclass(frozen=True, slots=True)
class ConfStatus:
    """The saved global configuration's state.

    Attributes:
        instance: the instance identifier.
        expired: True when its expiry date has passed (the proxies then refuse
            every exchange with ``OutdatedGlobalConf``).
        expire_date: when it expires (or expired).
        source_url: where it was downloaded from; None when expired.
        members: number of members it lists; None when expired.
        security_servers: number of security servers; None when expired.
    """

    instance: str
    expired: bool
    expire_date: dt.datetime
    source_url: str | None = None
    members: int | None = None
    security_servers: int | None = None


def _status(loaded: LoadedConfiguration) -> ConfStatus:
    return ConfStatus(
        instance=loaded.instance_identifier,
        expired=False,
        expire_date=loaded.expire_date,
        source_url=loaded.source_url,
        members=len(loaded.shared.members),
        security_servers=len(loaded.shared.security_servers),
    )


async def download_global_configuration(
    db: Database,
    config: SecurityServerConfig,
    actor: str,
    *,
    now: dt.datetime,
    record_audit: bool = True,
) -> ConfStatus:
    """Download, verify and save the configuration the saved anchor points at.

    ``record_audit=False`` is for the periodic refresh: a download someone
    asked for is an operator's action worth an audit row, the scheduled one
    every minute is not (registration states it moves are still audited).

    Raises:
        NotFound: code ``ServerNotInitialized`` (no anchor).
        GlobalConfError, GlobalConfSignatureError, GlobalConfExpired,
        XmlSecurityError, TransportError: from the download, on every source;
            the previously saved configuration is kept.
        StorageError: the configuration could not be saved.
    """
    anchor = read_anchor(config)
    async with aiohttp.ClientSession() as session:
        loaded = await fetch_global_configuration(
            session,
            anchor,
            config.globalconf.directory,
            now=now,
            timeout=config.timeouts.download_seconds,
        )
    if record_audit:
        async with db.transaction() as s:
            audit.record(
                s,
                actor=actor,
                action="globalconf.download",
                target=loaded.instance_identifier,
                now=now,
                detail={"source": loaded.source_url, "expires": loaded.expire_date},
            )
    # Onboarding: what the new configuration lists becomes registered.
    await sync_states(
        db, loaded.shared, server_id=(await get_identity(db)).server_id, now=now
    )
    return _status(loaded)


def global_configuration_status(
    config: SecurityServerConfig, *, now: dt.datetime
) -> ConfStatus:
    """The state of the saved configuration of the anchor's instance.

    Raises:
        NotFound: code ``ServerNotInitialized`` (no anchor).
        GlobalConfError: nothing saved yet, or the saved copy is damaged.
    """
    instance = read_anchor(config).instance_identifier
    try:
        loaded = load_saved_configuration(
            config.globalconf.directory, now=now, instance=instance
        )
    except GlobalConfExpired as exc:
        expired = dt.datetime.fromisoformat(str(exc.detail["expire_date"]))
        return ConfStatus(instance=instance, expired=True, expire_date=expired)
    return _status(loaded)
