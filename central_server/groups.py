"""Global groups and their members (shared-params ``globalGroup``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from jplink.errors import Conflict, NotFound
from jplink.identifiers import ClientId, GlobalGroupId
from jplink.storage import Database

from . import audit
from ._lookup import (
    check_instance,
    flush_or_conflict,
    instance_identifier,
    member_row,
    subsystem_row,
)
from .models import GlobalGroup, GlobalGroupMember, Member, MemberClass, Subsystem

__all__ = [
    "GlobalGroupInfo",
    "add_global_group",
    "add_group_member",
    "list_global_groups",
]


@dataclass(frozen=True, slots=True)
class GlobalGroupInfo:
    """A global group with its members (members or subsystems)."""

    id: GlobalGroupId
    description: str
    members: tuple[ClientId, ...]


async def add_global_group(
    db: Database,
    actor: str,
    group: GlobalGroupId,
    description: str,
    *,
    now: dt.datetime,
) -> GlobalGroupInfo:
    """Create a global group.

    Raises:
        InvalidRequest: the group belongs to another instance.
        Conflict: the group exists.
    """
    async with db.transaction() as s:
        await check_instance(s, group.instance)
        taken = (
            await s.execute(
                select(GlobalGroup.id).where(GlobalGroup.group_code == group.group_code)
            )
        ).first()
        if taken:
            raise Conflict(f"Global group {group} already exists")
        s.add(GlobalGroup(group_code=group.group_code, description=description))
        await flush_or_conflict(s, f"Global group {group} already exists")
        audit.record(s, actor=actor, action="group.add", target=str(group), now=now)
    return GlobalGroupInfo(group, description, ())


async def add_group_member(
    db: Database,
    actor: str,
    group: GlobalGroupId,
    client: ClientId,
    *,
    now: dt.datetime,
) -> None:
    """Add a member or subsystem to a global group.

    Raises:
        NotFound: the group or the client does not exist.
        Conflict: the client is already in the group.
    """
    async with db.transaction() as s:
        await check_instance(s, group.instance)
        grp = (
            await s.execute(
                select(GlobalGroup).where(GlobalGroup.group_code == group.group_code)
            )
        ).scalar_one_or_none()
        if grp is None:
            raise NotFound(f"Global group {group} does not exist")
        member = await member_row(s, client)
        sub_id = (await subsystem_row(s, client)).id if client.subsystem_code else None
        taken = (
            await s.execute(
                select(GlobalGroupMember.id).where(
                    GlobalGroupMember.group_id == grp.id,
                    GlobalGroupMember.member_id == member.id,
                    GlobalGroupMember.subsystem_id.is_(None)
                    if sub_id is None
                    else GlobalGroupMember.subsystem_id == sub_id,
                )
            )
        ).first()
        if taken:
            raise Conflict(f"{client} is already in {group}")
        s.add(
            GlobalGroupMember(group_id=grp.id, member_id=member.id, subsystem_id=sub_id)
        )
        await flush_or_conflict(s, f"{client} is already in {group}")
        audit.record(
            s,
            actor=actor,
            action="group.member.add",
            target=str(group),
            now=now,
            detail={"client": str(client)},
        )


async def list_global_groups(db: Database) -> list[GlobalGroupInfo]:
    """All global groups with their members, ordered by code.

    Raises:
        Conflict: the server is not initialised.
    """
    async with db.transaction() as s:
        instance = await instance_identifier(s)
        members = {
            m.id: ClientId(instance, c.code, m.member_code)
            for m, c in (
                await s.execute(
                    select(Member, MemberClass).join(
                        MemberClass, Member.member_class_id == MemberClass.id
                    )
                )
            ).all()
        }
        subs = {
            sub.id: members[sub.member_id].subsystem(sub.subsystem_code)
            for sub in (await s.execute(select(Subsystem))).scalars()
        }
        by_group: dict[int, list[ClientId]] = {}
        for gm in (await s.execute(select(GlobalGroupMember))).scalars():
            cid = subs[gm.subsystem_id] if gm.subsystem_id else members[gm.member_id]
            by_group.setdefault(gm.group_id, []).append(cid)
        groups = (
            await s.execute(select(GlobalGroup).order_by(GlobalGroup.group_code))
        ).scalars()
        return [
            GlobalGroupInfo(
                GlobalGroupId(instance, g.group_code),
                g.description,
                tuple(sorted(by_group.get(g.id, []))),
            )
            for g in groups
        ]
