"""Global groups and their members (shared-params ``globalGroup``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from jplink.errors import NotFound
from jplink.identifiers import ClientId, GlobalGroupId
from jplink.storage import Database

from . import audit
from ._lookup import (
    check_instance,
    client_criteria,
    client_index,
    client_keys,
    insert_unique,
    instance_identifier,
)
from .models import GlobalGroup, GlobalGroupMember

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
        await insert_unique(
            s,
            GlobalGroup(group_code=group.group_code, description=description),
            GlobalGroup.group_code == group.group_code,
            conflict=f"Global group {group} already exists",
        )
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
        keys = await client_keys(s, client)
        await insert_unique(
            s,
            GlobalGroupMember(group_id=grp.id, member_id=keys[0], subsystem_id=keys[1]),
            GlobalGroupMember.group_id == grp.id,
            *client_criteria(
                GlobalGroupMember.member_id, GlobalGroupMember.subsystem_id, keys
            ),
            conflict=f"{client} is already in {group}",
        )
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
        index = await client_index(s, instance)
        by_group: dict[int, list[ClientId]] = {}
        for gm in (await s.execute(select(GlobalGroupMember))).scalars():
            cid = index.client(gm.member_id, gm.subsystem_id)
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
