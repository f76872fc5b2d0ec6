"""Instance, system parameters, member classes, members and subsystems.

Each public coroutine is one transaction that also writes its audit row
(:mod:`central_server.audit`). Identifiers are :mod:`jplink.identifiers`
objects, so their characters are already validated; this module checks that
they belong to this instance and refer to rows that exist.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, InvalidRequest
from jplink.identifiers import ClientId, parse_client_id, validate_part
from jplink.storage import Database

from . import audit
from ._lookup import (
    INSTANCE_KEY,
    check_instance,
    flush_or_conflict,
    insert_unique,
    instance_identifier,
    member_class_row,
    member_row,
    subsystem_row,
)
from .models import Member, MemberClass, Subsystem, SystemParameter

__all__ = [
    "MemberInfo",
    "Parameter",
    "SystemParameters",
    "add_member",
    "add_member_class",
    "add_subsystem",
    "get_parameters",
    "initialize",
    "insert_member",
    "list_member_classes",
    "list_members",
    "set_management_service_provider",
    "set_parameter",
]

_MSP_KEY = "managementServiceProvider"


class Parameter(enum.Enum):
    """Integer system parameters, named as in shared/private params."""

    OCSP_FRESHNESS_SECONDS = "ocspFreshnessSeconds"
    TIME_STAMPING_INTERVAL_SECONDS = "timeStampingIntervalSeconds"
    CONF_EXPIRE_INTERVAL_SECONDS = "confExpireIntervalSeconds"


#: Defaults (X-Road's): OCSP 3600 s, time-stamping 60 s, configuration 600 s.
DEFAULTS: Mapping[Parameter, int] = {
    Parameter.OCSP_FRESHNESS_SECONDS: 3600,
    Parameter.TIME_STAMPING_INTERVAL_SECONDS: 60,
    Parameter.CONF_EXPIRE_INTERVAL_SECONDS: 600,
}


@dataclass(frozen=True, slots=True)
class SystemParameters:
    """The instance identifier and the global system parameters."""

    instance_identifier: str
    ocsp_freshness_seconds: int
    time_stamping_interval_seconds: int
    conf_expire_interval_seconds: int
    management_service_provider: ClientId | None


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A member with its name and subsystems."""

    id: ClientId
    name: str
    member_class_description: str
    subsystems: tuple[ClientId, ...]
    created_at: dt.datetime


async def initialize(
    db: Database,
    actor: str,
    *,
    instance: str,
    member_classes: Mapping[str, str],
    now: dt.datetime,
) -> SystemParameters:
    """Set the instance identifier, default parameters and member classes.

    Args:
        db: the central server's database.
        actor: who does it.
        instance: the X-Road instance identifier (e.g. ``JP``).
        member_classes: code -> description (e.g. ``{"COM": "Companies"}``).
        now: the time recorded.

    Returns:
        The parameters now in force.

    Raises:
        InvalidRequest: a code with forbidden characters.
        Conflict: the server is already initialised.
    """
    validate_part(instance, "xRoadInstance")
    for code in member_classes:
        validate_part(code, "memberClass")
    async with db.transaction() as s:
        if await s.get(SystemParameter, INSTANCE_KEY) is not None:
            raise Conflict("The central server is already initialised")
        s.add(SystemParameter(key=INSTANCE_KEY, value=instance))
        for param, value in DEFAULTS.items():
            s.add(SystemParameter(key=param.value, value=str(value)))
        for code, description in member_classes.items():
            s.add(MemberClass(code=code, description=description))
        await flush_or_conflict(s, "The central server is already initialised")
        audit.record(
            s,
            actor=actor,
            action="instance.init",
            target=instance,
            now=now,
            detail={"memberClasses": sorted(member_classes)},
        )
    return await get_parameters(db)


async def get_parameters(db: Database) -> SystemParameters:
    """Read the system parameters.

    Raises:
        Conflict: the server is not initialised.
    """
    async with db.transaction() as s:
        instance = await instance_identifier(s)
        rows = {
            r.key: r.value for r in (await s.execute(select(SystemParameter))).scalars()
        }
    values = {p: int(rows.get(p.value, DEFAULTS[p])) for p in Parameter}
    msp = rows.get(_MSP_KEY)
    return SystemParameters(
        instance_identifier=instance,
        ocsp_freshness_seconds=values[Parameter.OCSP_FRESHNESS_SECONDS],
        time_stamping_interval_seconds=values[Parameter.TIME_STAMPING_INTERVAL_SECONDS],
        conf_expire_interval_seconds=values[Parameter.CONF_EXPIRE_INTERVAL_SECONDS],
        management_service_provider=parse_client_id(msp) if msp else None,
    )


async def set_parameter(
    db: Database, actor: str, param: Parameter, value: int, *, now: dt.datetime
) -> SystemParameters:
    """Change one integer system parameter.

    Raises:
        InvalidRequest: a value that is not a positive integer.
        Conflict: the server is not initialised.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidRequest(f"{param.value} must be a positive integer")
    async with db.transaction() as s:
        await instance_identifier(s)
        row = await s.get(SystemParameter, param.value)
        old = row.value if row else None
        if row is None:
            s.add(SystemParameter(key=param.value, value=str(value)))
        else:
            row.value = str(value)
        audit.record(
            s,
            actor=actor,
            action="parameter.set",
            target=param.value,
            now=now,
            detail={"old": old, "new": value},
        )
    return await get_parameters(db)


async def set_management_service_provider(
    db: Database, actor: str, provider: ClientId, *, now: dt.datetime
) -> SystemParameters:
    """Name the subsystem that provides the management services.

    Raises:
        InvalidRequest: ``provider`` is not a subsystem of this instance.
        NotFound: the subsystem is not registered.
    """
    async with db.transaction() as s:
        await subsystem_row(s, provider)
        row = await s.get(SystemParameter, _MSP_KEY)
        if row is None:
            s.add(SystemParameter(key=_MSP_KEY, value=str(provider)))
        else:
            row.value = str(provider)
        audit.record(
            s, actor=actor, action="parameter.msp", target=str(provider), now=now
        )
    return await get_parameters(db)


async def add_member_class(
    db: Database, actor: str, code: str, description: str, *, now: dt.datetime
) -> None:
    """Define a new member class.

    Raises:
        InvalidRequest: forbidden characters in ``code``.
        Conflict: the class exists, or the server is not initialised.
    """
    validate_part(code, "memberClass")
    async with db.transaction() as s:
        await instance_identifier(s)
        exists = (
            await s.execute(select(MemberClass.id).where(MemberClass.code == code))
        ).first()
        if exists:
            raise Conflict(f"Member class {code!r} already exists")
        s.add(MemberClass(code=code, description=description))
        await flush_or_conflict(s, f"Member class {code!r} already exists")
        audit.record(s, actor=actor, action="memberClass.add", target=code, now=now)


async def list_member_classes(db: Database) -> dict[str, str]:
    """Member class code -> description, sorted by code.

    Raises:
        StorageError: if the database fails.
    """
    async with db.transaction() as s:
        rows = (
            await s.execute(select(MemberClass).order_by(MemberClass.code))
        ).scalars()
        return {r.code: r.description for r in rows}


async def insert_member(
    session: AsyncSession, actor: str, member: ClientId, name: str, *, now: dt.datetime
) -> MemberInfo:
    """Add a member inside the caller's transaction (with its audit row).

    Raises:
        InvalidRequest: a subsystem id, other instance, unknown class, empty name.
        Conflict: the member exists.
    """
    if member.subsystem_code is not None:
        raise InvalidRequest(f"{member} is a subsystem, not a member")
    if not name.strip():
        raise InvalidRequest("A member needs a name")
    await check_instance(session, member.instance)
    cls = await member_class_row(session, member.member_class)
    await insert_unique(
        session,
        Member(
            member_class_id=cls.id,
            member_code=member.member_code,
            name=name,
            created_at=now,
        ),
        Member.member_class_id == cls.id,
        Member.member_code == member.member_code,
        conflict=f"Member {member} already exists",
    )
    audit.record(
        session,
        actor=actor,
        action="member.add",
        target=str(member),
        now=now,
        detail={"name": name},
    )
    return MemberInfo(member, name, cls.description, (), now)


async def add_member(
    db: Database, actor: str, member: ClientId, name: str, *, now: dt.datetime
) -> MemberInfo:
    """Register a member.

    Raises:
        InvalidRequest: a subsystem id, other instance, unknown class, empty name.
        Conflict: the member exists.
    """
    async with db.transaction() as s:
        return await insert_member(s, actor, member, name, now=now)


async def add_subsystem(
    db: Database,
    actor: str,
    subsystem: ClientId,
    *,
    name: str | None = None,
    now: dt.datetime,
) -> ClientId:
    """Register a subsystem of an existing member.

    Raises:
        InvalidRequest: not a subsystem id.
        NotFound: the member does not exist.
        Conflict: the subsystem exists.
    """
    if subsystem.subsystem_code is None:
        raise InvalidRequest(f"{subsystem} is not a subsystem")
    async with db.transaction() as s:
        member = await member_row(s, subsystem)
        await insert_unique(
            s,
            Subsystem(
                member_id=member.id,
                subsystem_code=subsystem.subsystem_code,
                name=name,
                created_at=now,
            ),
            Subsystem.member_id == member.id,
            Subsystem.subsystem_code == subsystem.subsystem_code,
            conflict=f"Subsystem {subsystem} already exists",
        )
        audit.record(
            s, actor=actor, action="subsystem.add", target=str(subsystem), now=now
        )
    return subsystem


async def list_members(db: Database) -> list[MemberInfo]:
    """All members with their subsystems, ordered by class and code.

    Raises:
        Conflict: the server is not initialised.
    """
    async with db.transaction() as s:
        instance = await instance_identifier(s)
        rows = (
            await s.execute(
                select(Member, MemberClass)
                .join(MemberClass, Member.member_class_id == MemberClass.id)
                .order_by(MemberClass.code, Member.member_code)
            )
        ).all()
        subs: dict[int, list[str]] = {}
        for sub in (
            await s.execute(select(Subsystem).order_by(Subsystem.subsystem_code))
        ).scalars():
            subs.setdefault(sub.member_id, []).append(sub.subsystem_code)
    result = []
    for member, cls in rows:
        cid = ClientId(instance, cls.code, member.member_code)
        result.append(
            MemberInfo(
                id=cid,
                name=member.name,
                member_class_description=cls.description,
                subsystems=tuple(cid.subsystem(c) for c in subs.get(member.id, [])),
                created_at=audit.aware(member.created_at),
            )
        )
    return result
