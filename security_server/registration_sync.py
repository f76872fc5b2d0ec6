"""Finishing onboarding requests from what the global configuration lists.

Step 5 of onboarding (:mod:`security_server.registration`):
:func:`sync_states`, after each global-configuration download, moves what the
configuration now lists (or no longer lists) to its final state: an auth
certificate becomes registered, a client registered or deleted, and the
request that asked for it complete. Each change and its audit row are written
in one transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import NotFound
from jplink.globalconf import SharedParameters
from jplink.identifiers import SecurityServerId
from jplink.security.certs import CertProfile
from jplink.storage import Database

from . import audit
from .management_client import latest_request
from .models import Certificate, Client
from .states import CentralRequestKind, CentralRequestStatus, CertStatus, ClientState

__all__ = ["StateChange", "sync_states"]

_K = CentralRequestKind
_S = CentralRequestStatus


@dataclass(frozen=True, slots=True)
class StateChange:
    """One state :func:`sync_states` changed."""

    target: str
    before: str
    after: str


async def sync_states(
    db: Database,
    shared: SharedParameters,
    *,
    server_id: SecurityServerId,
    now: dt.datetime,
    actor: str = "globalconf",
) -> list[StateChange]:
    """Move states to what a newly downloaded global configuration says.

    - an auth certificate whose hash the configuration lists for this server
      becomes ``registered`` (X-Road's ``REGISTERED`` once the central
      server published the approved ``authCertReg``);
    - a client listed under this server becomes ``registered``; so does the
      owner member once the configuration lists this server;
    - a client in ``deletion-in-progress`` no longer listed goes back to
      ``saved`` (X-Road keeps the local client after an approved
      ``clientDeletion`` until the administrator deletes it).

    Args:
        db: the server's database.
        shared: the verified shared parameters just downloaded.
        server_id: this server.
        now: when.
        actor: the audit log's actor.

    Returns:
        What changed.

    Raises:
        StorageError: the database failed.
    """
    try:
        server = shared.server(server_id)
        hashes = {h.hex() for h in server.auth_cert_hashes}
        # The shared parameters list the owner as the server's ``owner``, not
        # among its ``client``s (X-Road's samples do the same); a listed
        # server means a registered owner.
        listed = {str(c) for c in server.clients} | {str(server_id.owner)}
    except NotFound:
        hashes, listed = set(), set()
    changes: list[StateChange] = []
    async with db.transaction() as s:
        certs = await s.execute(
            select(Certificate).where(
                Certificate.usage == CertProfile.AUTH.value,
                Certificate.status.in_(
                    (CertStatus.SAVED.value, CertStatus.REGISTRATION_IN_PROGRESS.value)
                ),
            )
        )
        for cert in certs.scalars():
            if cert.cert_sha256 in hashes:
                changes.append(
                    StateChange(
                        cert.cert_sha256, cert.status, CertStatus.REGISTERED.value
                    )
                )
                cert.status = CertStatus.REGISTERED.value
                await _complete(s, _K.AUTH_CERT_REG, cert.cert_sha256, now)
        rows = await s.execute(select(Client))
        for client in rows.scalars():
            after = _client_after(client.state, client.identifier in listed)
            if after is None:
                continue
            changes.append(StateChange(client.identifier, client.state, after))
            kind = _K.CLIENT_REG if after == ClientState.REGISTERED.value else None
            client.state = after
            await _complete(s, kind or _K.CLIENT_DELETION, client.identifier, now)
        for change in changes:
            audit.record(
                s,
                actor=actor,
                action="registration.sync",
                target=change.target,
                now=now,
                detail={"from": change.before, "to": change.after},
            )
    return changes


def _client_after(state: str, listed: bool) -> str | None:
    if listed and state in (
        ClientState.SAVED.value,
        ClientState.REGISTRATION_IN_PROGRESS.value,
    ):
        return ClientState.REGISTERED.value
    if not listed and state == ClientState.DELETION_IN_PROGRESS.value:
        return ClientState.SAVED.value
    return None


async def _complete(s: AsyncSession, kind: _K, target: str, now: dt.datetime) -> None:
    row = await latest_request(s, kind, target)
    if row is not None and row.status == _S.SUBMITTED.value:
        row.status, row.updated_at = _S.COMPLETED.value, now
