"""``clientReg`` / ``clientDeletion``: registering and deleting clients.

Both go as X-Road messages through this server's own client proxy (the
running ``jplink ss serve``), which signs and sends them to the management
security server; that one forwards them to the central server. The shared
steps (configuration, signer, records) are those of
:mod:`security_server.management_client`; the public names are re-exported by
:mod:`security_server.registration`.
"""

from __future__ import annotations

import datetime as dt
import uuid

import aiohttp

from jplink.errors import Conflict, InvalidRequest
from jplink.identifiers import ClientId
from jplink.protocol.management import (
    ManagementRequest,
    ManagementRequestType,
    build_management_message,
    build_management_request,
)
from jplink.storage import Database

from . import audit
from .clients import find_client
from .config import SecurityServerConfig
from .identity import load_identity
from .management_client import (
    ManagementSubmission,
    client_proxy_url,
    load_configuration,
    member_signer,
    record_submission,
)
from .management_transport import post_management_request
from .softtoken import unlock
from .states import CentralRequestKind, CentralRequestStatus, ClientState

__all__ = ["register_client", "unregister_client"]

_K = CentralRequestKind
_S = CentralRequestStatus


async def _send_client_request(
    db: Database,
    config: SecurityServerConfig,
    client_id: ClientId,
    kind: CentralRequestKind,
    *,
    allowed: tuple[ClientState, ...],
    new_state: ClientState,
    pin: str | None,
    session: aiohttp.ClientSession,
    actor: str,
    now: dt.datetime,
) -> ManagementSubmission:
    loaded = load_configuration(config, now=now)
    assert loaded.private is not None
    provider = loaded.private.management_service.provider_id
    async with db.transaction() as s:
        unlocked = await unlock(s, pin) if pin is not None else None
        identity = await load_identity(s)
        row = await find_client(s, client_id)
        if client_id == identity.owner:
            # X-Road registers the owner with the server itself (authCertReg);
            # it is never registered or deleted as a client on its own.
            raise InvalidRequest(
                "The owner is not registered or deleted as a client",
                code="OwnerClient",
            )
        if row.state not in {a.value for a in allowed}:
            raise Conflict(
                f"{client_id} is {row.state}; {kind.value} needs "
                + " or ".join(a.value for a in allowed),
                code="WrongClientState",
            )
        name = row.name
    request_type = ManagementRequestType(kind.value)
    request = ManagementRequest(
        request_type,
        identity.server_id,
        client=client_id,
        subsystem_name=(name or None)
        if request_type is ManagementRequestType.CLIENT_REG
        and client_id.subsystem_code is not None
        else None,
    )
    # PR-MSERV: the header client is the server owner ("Sender does not match
    # server owner" otherwise); the client's owner member signs clientReg.
    soap = build_management_request(
        request, service_provider=provider, message_id=str(uuid.uuid4())
    )
    signer = None
    if unlocked is not None:
        signer = await member_signer(
            db, config, unlocked, loaded.shared, client_id.member, now=now
        )
    ctype, body = build_management_message(soap, request_type, member=signer)
    answer = await post_management_request(
        session,
        client_proxy_url(config),
        ctype,
        body,
        request_type,
        timeout=config.timeouts.read_seconds,
    )
    assert answer.request_id is not None
    async with db.transaction() as s:
        row = await find_client(s, client_id)
        before, row.state = row.state, new_state.value
        record_submission(s, actor, kind, str(client_id), answer.request_id, now=now)
        audit.record(
            s,
            actor=actor,
            action="client.state",
            target=str(client_id),
            now=now,
            detail={"from": before, "to": new_state.value},
        )
    return ManagementSubmission(
        kind, str(client_id), answer.request_id, new_state.value
    )


async def register_client(
    db: Database,
    config: SecurityServerConfig,
    client_id: ClientId,
    *,
    pin: str,
    session: aiohttp.ClientSession,
    actor: str,
    now: dt.datetime,
) -> ManagementSubmission:
    """Send ``clientReg`` through this server's client proxy.

    Signed by the signing key of the client's member (PROTOCOLS.md §10: "sig
    by the client's owner member signing key; its cert; its OCSP"), sent as an
    X-Road request with the server owner as header client and
    ``managementRequestServiceProviderId`` + ``clientReg`` as service. The
    running ``jplink ss serve`` signs it again as an X-Road message and
    forwards it to the management security server.

    Returns:
        The central request id; the client is ``registration-in-progress``.

    Raises:
        Unauthenticated: code ``PinIncorrect``.
        NotFound: ``ClientNotFound``; ``CertNotFound`` (no signing
            certificate of the client's member).
        Conflict: code ``WrongClientState`` (not ``saved``).
        InvalidRequest: code ``OwnerClient`` for the owner member.
        GlobalConfError, InvalidRequest, CertificateValidationError,
        OcspError ...: see :func:`register_auth_cert`.
        TransportError: the client proxy is not running or failed.
        SoapFault: refused on the way or by the central server.
        StorageError: the database failed.
    """
    return await _send_client_request(
        db,
        config,
        client_id,
        _K.CLIENT_REG,
        allowed=(ClientState.SAVED,),
        new_state=ClientState.REGISTRATION_IN_PROGRESS,
        pin=pin,
        session=session,
        actor=actor,
        now=now,
    )


async def unregister_client(
    db: Database,
    config: SecurityServerConfig,
    client_id: ClientId,
    *,
    session: aiohttp.ClientSession,
    actor: str,
    now: dt.datetime,
) -> ManagementSubmission:
    """Send ``clientDeletion`` (plain SOAP, no proof parts) via the client proxy.

    Returns:
        The central request id; the client is ``deletion-in-progress``.

    Raises:
        NotFound: code ``ClientNotFound``.
        Conflict: code ``WrongClientState`` (not registered or in
            registration).
        GlobalConfError, TransportError, SoapFault, StorageError: see
            :func:`register_client`.
    """
    return await _send_client_request(
        db,
        config,
        client_id,
        _K.CLIENT_DELETION,
        allowed=(ClientState.REGISTERED, ClientState.REGISTRATION_IN_PROGRESS),
        new_state=ClientState.DELETION_IN_PROGRESS,
        pin=None,
        session=session,
        actor=actor,
        now=now,
    )
