"""Read the registry, in one transaction, into the global-configuration model.

The result is a :class:`RegistrySnapshot` of :mod:`jplink.globalconf` value
objects in a canonical order (member classes, members and subsystems by code,
security servers by owner and code, clients and group members sorted, CAs and
TSAs by name), so the same registry state always gives the same XML bytes.

What management requests change is published the way X-Road's V6 schema
expresses it: a server in maintenance mode gets ``inMaintenanceMode`` (V5+,
with the optional ``message``), and a **disabled** client is left out of its
server's ``client`` list (X-Road's central server lists only enabled server
clients; the member or subsystem itself stays under ``member``), so peers
find no server for it until ``clientEnable`` is approved.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import func, select

from jplink.errors import GlobalConfError
from jplink.globalconf import (
    ApprovedCA,
    ApprovedTSA,
    CaInfo,
    GlobalGroup,
    MaintenanceMode,
    Member,
    MemberClass,
    OcspResponder,
    SecurityServer,
    Subsystem,
)
from jplink.identifiers import ClientId, GlobalGroupId, SecurityServerId
from jplink.storage import Database

from .. import models as m
from ..registry import SystemParameters, get_parameters

__all__ = ["RegistrySnapshot", "change_marker", "read_registry"]


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """What the registry says at one moment (no signing keys, no sources).

    Attributes:
        parameters: instance identifier and system parameters.
        member_classes: by code.
        members: by class and code, each with its subsystems by code.
        security_servers: by owner and server code.
        global_groups: by group code.
        approved_cas: by name.
        approved_tsas: by name.
        change_marker: the newest audit-log id when it was read.
    """

    parameters: SystemParameters
    member_classes: tuple[MemberClass, ...]
    members: tuple[Member, ...]
    security_servers: tuple[SecurityServer, ...]
    global_groups: tuple[GlobalGroup, ...]
    approved_cas: tuple[ApprovedCA, ...]
    approved_tsas: tuple[ApprovedTSA, ...]
    change_marker: int


def _cert(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise GlobalConfError(
            f"The registry holds a broken certificate: {what}"
        ) from exc


def _ca_info(cert: bytes, url: str | None, ocsp: bytes | None, what: str) -> CaInfo:
    responders: tuple[OcspResponder, ...] = ()
    if url:
        responders = (
            OcspResponder(url, _cert(ocsp, f"{what} OCSP") if ocsp else None),
        )
    return CaInfo(_cert(cert, what), responders)


async def change_marker(db: Database) -> int:
    """The newest audit-log id: every registry change writes one.

    Raises:
        StorageError: if the database fails.
    """
    async with db.transaction() as s:
        return int((await s.execute(select(func.max(m.AuditEntry.id)))).scalar() or 0)


async def read_registry(db: Database) -> RegistrySnapshot:
    """Read everything the global configuration lists.

    Raises:
        Conflict: the server is not initialised.
        GlobalConfError: a stored certificate does not parse.
        StorageError: if the database fails.
    """
    params = await get_parameters(db)
    inst = params.instance_identifier
    async with db.transaction() as s:
        marker = int((await s.execute(select(func.max(m.AuditEntry.id)))).scalar() or 0)
        classes = {c.id: c for c in (await s.execute(select(m.MemberClass))).scalars()}
        # Column tuples, not ORM entities: tens of thousands of rows are read
        # and nothing is changed, so the identity map would only cost time.
        member_ids: dict[int, ClientId] = {}
        member_rows: list[tuple[ClientId, int, int, str]] = []
        for mid, class_id, code, name in await s.execute(
            select(
                m.Member.id,
                m.Member.member_class_id,
                m.Member.member_code,
                m.Member.name,
            )
        ):
            cid = ClientId(inst, classes[class_id].code, code)
            member_ids[mid] = cid
            member_rows.append((cid, mid, class_id, name))
        subs: dict[int, list[Subsystem]] = defaultdict(list)
        sub_ids: dict[int, ClientId] = {}
        for sub_id, member_id, sub_code, sub_name in await s.execute(
            select(
                m.Subsystem.id,
                m.Subsystem.member_id,
                m.Subsystem.subsystem_code,
                m.Subsystem.name,
            )
        ):
            sid = member_ids[member_id].subsystem(sub_code)
            sub_ids[sub_id] = sid
            subs[member_id].append(Subsystem(sid, sub_name))
        hashes: dict[int, list[bytes]] = defaultdict(list)
        for cert in (
            await s.execute(select(m.AuthCert).order_by(m.AuthCert.id))
        ).scalars():
            hashes[cert.server_id].append(base64.b64decode(cert.cert_hash))
        clients: dict[int, list[ClientId]] = defaultdict(list)
        for c in (
            await s.execute(select(m.ServerClient).where(m.ServerClient.enabled))
        ).scalars():
            clients[c.server_id].append(
                sub_ids[c.subsystem_id] if c.subsystem_id else member_ids[c.member_id]
            )
        servers = []
        for srv in (await s.execute(select(m.SecurityServer))).scalars():
            owner = member_ids[srv.owner_id]
            servers.append(
                SecurityServer(
                    id=SecurityServerId(
                        inst, owner.member_class, owner.member_code, srv.server_code
                    ),
                    address=srv.address,
                    auth_cert_hashes=tuple(hashes[srv.id]),
                    clients=tuple(sorted(clients[srv.id])),
                    maintenance=(
                        MaintenanceMode(srv.maintenance_message)
                        if srv.in_maintenance
                        else None
                    ),
                )
            )
        group_members: dict[int, list[ClientId]] = defaultdict(list)
        for gm in (await s.execute(select(m.GlobalGroupMember))).scalars():
            group_members[gm.group_id].append(
                sub_ids[gm.subsystem_id]
                if gm.subsystem_id
                else member_ids[gm.member_id]
            )
        groups = [
            GlobalGroup(
                GlobalGroupId(inst, g.group_code),
                g.description,
                tuple(sorted(group_members[g.id])),
            )
            for g in (
                await s.execute(
                    select(m.GlobalGroup).order_by(m.GlobalGroup.group_code)
                )
            ).scalars()
        ]
        inters: dict[int, list[CaInfo]] = defaultdict(list)
        for i in (
            await s.execute(select(m.IntermediateCa).order_by(m.IntermediateCa.id))
        ).scalars():
            inters[i.ca_id].append(
                _ca_info(i.cert, i.ocsp_url, i.ocsp_cert, f"intermediate CA {i.id}")
            )
        cas = [
            ApprovedCA(
                name=ca.name,
                top_ca=_ca_info(ca.top_ca_cert, ca.ocsp_url, ca.ocsp_cert, ca.name),
                certificate_profile_info=ca.certificate_profile,
                intermediate_cas=tuple(inters[ca.id]),
                authentication_only=ca.authentication_only,
            )
            for ca in (
                await s.execute(select(m.ApprovedCa).order_by(m.ApprovedCa.name))
            ).scalars()
        ]
        tsas = [
            ApprovedTSA(t.name, t.url, _cert(t.cert, f"TSA {t.name}"))
            for t in (
                await s.execute(select(m.ApprovedTsa).order_by(m.ApprovedTsa.name))
            ).scalars()
        ]
    members = sorted(
        (
            Member(
                id=cid,
                class_description=classes[class_id].description,
                name=name,
                subsystems=tuple(sorted(subs[mid], key=lambda x: x.id)),
            )
            for cid, mid, class_id, name in member_rows
        ),
        key=lambda x: x.id,
    )
    return RegistrySnapshot(
        parameters=params,
        member_classes=tuple(
            sorted(
                (MemberClass(c.code, c.description) for c in classes.values()),
                key=lambda x: x.code,
            )
        ),
        members=tuple(members),
        security_servers=tuple(sorted(servers, key=lambda x: x.id)),
        global_groups=tuple(groups),
        approved_cas=tuple(cas),
        approved_tsas=tuple(tsas),
        change_marker=marker,
    )
