"""Initialisation: the configuration anchor, the owner member and the server code.

``initialize`` is the first step of joining (DESIGN.md §3 flow 1): the operator
uploads the anchor (checked out of band by its hash, PROTOCOLS.md §9.1), names
the owner member and the server code. The anchor file is kept in the home and
the owner becomes this server's first client.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.globalconf import ConfigurationAnchor, parse_configuration_anchor
from jplink.identifiers import ClientId, SecurityServerId, parse_client_id
from jplink.security.certs import MemberSubject
from jplink.storage import Database

from . import audit
from .config import SecurityServerConfig
from .keystore import write_private_file
from .models import Client, ServerIdentity
from .states import ClientState

__all__ = ["ServerInfo", "get_identity", "initialize", "load_identity", "read_anchor"]


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """This security server's identity.

    Attributes:
        server_id: ``SERVER:<instance>/<class>/<code>/<serverCode>``.
        owner_name: the owner member's name (``O`` of its certificates).
        anchor_sha256: hex SHA-256 of the anchor file in force.
        initialized_at: when ``init`` ran.
    """

    server_id: SecurityServerId
    owner_name: str
    anchor_sha256: str
    initialized_at: dt.datetime

    @property
    def owner(self) -> ClientId:
        """The owner member."""
        return self.server_id.owner

    def member_subject(self, member: ClientId, name: str) -> MemberSubject:
        """The certificate subject of ``member`` (with this server's code)."""
        return MemberSubject(
            instance=member.instance,
            member_class=member.member_class,
            member_code=member.member_code,
            member_name=name,
            server_code=self.server_id.server_code,
        )


def _info(row: ServerIdentity) -> ServerInfo:
    owner = parse_client_id(row.owner)
    return ServerInfo(
        server_id=SecurityServerId(
            owner.instance, owner.member_class, owner.member_code, row.server_code
        ),
        owner_name=row.owner_name,
        anchor_sha256=row.anchor_sha256,
        initialized_at=audit.aware(row.initialized_at),
    )


async def load_identity(session: AsyncSession) -> ServerInfo:
    """The identity, inside an open transaction.

    Raises:
        NotFound: code ``ServerNotInitialized`` before ``init``.
    """
    row = (await session.execute(select(ServerIdentity))).scalar_one_or_none()
    if row is None:
        raise NotFound(
            "The security server is not initialised (run 'jplink ss init')",
            code="ServerNotInitialized",
        )
    return _info(row)


async def get_identity(db: Database) -> ServerInfo:
    """The identity of this server.

    Raises:
        NotFound: code ``ServerNotInitialized`` before ``init``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        return await load_identity(session)


def read_anchor(config: SecurityServerConfig) -> ConfigurationAnchor:
    """The configuration anchor saved by ``init``.

    Raises:
        NotFound: code ``ServerNotInitialized`` when there is no anchor file.
        XmlSecurityError, GlobalConfError: the saved file is damaged.
    """
    try:
        data = config.anchor_path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFound(
            f"No configuration anchor at {config.anchor_path}",
            code="ServerNotInitialized",
        ) from exc
    return parse_configuration_anchor(data)


async def initialize(
    db: Database,
    config: SecurityServerConfig,
    actor: str,
    *,
    anchor: bytes,
    owner: ClientId,
    owner_name: str,
    server_code: str,
    now: dt.datetime,
) -> ServerInfo:
    """Initialise the server with its anchor, owner member and server code.

    Args:
        db: the server's database.
        config: where the anchor file is kept.
        actor: who does it (audit log).
        anchor: the anchor XML the operator uploaded.
        owner: the owner member (``MEMBER:...``, no subsystem).
        owner_name: the owner's registered name.
        server_code: this server's code.
        now: when.

    Returns:
        The new identity.

    Raises:
        XmlSecurityError, GlobalConfError: the anchor is not a valid anchor.
        InvalidRequest: a subsystem as owner, a bad server code or name, or an
            owner of another instance than the anchor's.
        Conflict: code ``ServerAlreadyInitialized`` when already initialised.
        StorageError: the database or the anchor file could not be written.
    """
    parsed = parse_configuration_anchor(anchor)
    if owner.subsystem_code is not None:
        raise InvalidRequest("The owner must be a member, not a subsystem")
    server_id = SecurityServerId(
        owner.instance, owner.member_class, owner.member_code, server_code
    )
    # The certificate profile's rules for names and codes apply from the start.
    MemberSubject(
        owner.instance, owner.member_class, owner.member_code, owner_name, server_code
    )
    if parsed.instance_identifier != owner.instance:
        raise InvalidRequest(
            f"The anchor is for instance {parsed.instance_identifier!r}, "
            f"the owner belongs to {owner.instance!r}",
            code="InstanceMismatch",
        )
    digest = hashlib.sha256(anchor).hexdigest()
    async with db.transaction() as session:
        if (await session.execute(select(ServerIdentity))).first() is not None:
            raise Conflict(
                "The security server is already initialised",
                code="ServerAlreadyInitialized",
            )
        row = ServerIdentity(
            id=1,
            instance=owner.instance,
            owner=str(owner),
            owner_name=owner_name,
            server_code=server_code,
            anchor_sha256=digest,
            initialized_at=now,
        )
        session.add(row)
        existing = await session.execute(
            select(Client).where(Client.identifier == str(owner))
        )
        if existing.first() is None:
            session.add(
                Client(
                    identifier=str(owner),
                    name=owner_name,
                    state=ClientState.SAVED.value,
                    created_at=now,
                )
            )
        audit.record(
            session,
            actor=actor,
            action="server.init",
            target=str(server_id),
            now=now,
            detail={"anchor_sha256": digest},
        )
        # The file is written last inside the transaction: if it fails, the
        # rows roll back; if the commit fails, init can simply be run again.
        write_private_file(config.anchor_path.parent, config.anchor_path.name, anchor)
        await session.flush()
        return _info(row)
