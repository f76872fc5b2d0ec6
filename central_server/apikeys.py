"""Admin API keys bound to roles, stored hashed.

A key looks like ``jpcs_<keyid>_<secret>``: the key id finds the row, the SHA-256
of the whole key is compared in constant time (:func:`jplink.web.verify_secret`).
The plain key is returned exactly once, at creation. Roles follow X-Road's
central server: the registration officer manages members, servers and
requests; the security officer manages trust (approved CAs and TSAs) and may
also decide certificate requests; the system administrator manages system
parameters and API keys.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import select

from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.storage import Database
from jplink.storage.apikeys import ApiKeyFormat, authenticate_api_key, find_api_key

from . import audit
from .member_requests import check_text
from .models import ApiKey

__all__ = [
    "ApiKeyInfo",
    "Principal",
    "Role",
    "authenticate",
    "create_api_key",
    "list_api_keys",
    "parse_role",
    "revoke_api_key",
]

_KEYS = ApiKeyFormat("jpcs")


class Role(enum.Enum):
    """Admin roles; the value is the API/CLI word."""

    REGISTRATION_OFFICER = "registration-officer"
    SECURITY_OFFICER = "security-officer"
    SYSTEM_ADMINISTRATOR = "system-administrator"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: which key, whose name, which role."""

    key_id: str
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"apikey:{self.name}({self.key_id})"


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key's public facts (never the key itself)."""

    key_id: str
    name: str
    role: Role
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def parse_role(text: str) -> Role:
    """``registration-officer`` ... -> Role.

    Raises:
        InvalidRequest: an unknown role word.
    """
    try:
        return Role(text)
    except ValueError:
        words = ", ".join(r.value for r in Role)
        raise InvalidRequest(f"Unknown role {text!r}; use one of {words}") from None


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=row.key_id,
        name=row.name,
        role=Role(row.role),
        created_at=audit.aware(row.created_at),
        revoked_at=audit.aware(row.revoked_at) if row.revoked_at else None,
    )


async def create_api_key(
    db: Database, actor: str, *, name: str, role: Role, now: dt.datetime
) -> tuple[ApiKeyInfo, str]:
    """Create a key; the plain key is returned once and stored only hashed.

    Returns:
        The key's facts and the plain key.

    Raises:
        InvalidRequest: an empty or over-long name.
    """
    check_text(name, "name", limit=255)
    new = _KEYS.new_key()
    key_id = new.key_id
    async with db.transaction() as s:
        row = ApiKey(
            key_id=key_id,
            key_hash=new.key_hash,
            role=role.value,
            name=name,
            created_at=now,
        )
        s.add(row)
        await s.flush()
        audit.record(
            s,
            actor=actor,
            action="apiKey.create",
            target=key_id,
            now=now,
            detail={"name": name, "role": role.value},
        )
        return _info(row), new.key


async def revoke_api_key(
    db: Database, actor: str, key_id: str, *, now: dt.datetime
) -> ApiKeyInfo:
    """Revoke a key; it never authenticates again.

    Raises:
        NotFound: no such key.
        Conflict: already revoked.
    """
    async with db.transaction() as s:
        row = await find_api_key(s, ApiKey, key_id)
        if row is None:
            raise NotFound(f"API key {key_id} does not exist")
        if row.revoked_at is not None:
            raise Conflict(f"API key {key_id} is already revoked")
        row.revoked_at = now
        audit.record(s, actor=actor, action="apiKey.revoke", target=key_id, now=now)
        return _info(row)


async def list_api_keys(db: Database) -> list[ApiKeyInfo]:
    """All keys (revoked ones too), oldest first.

    Raises:
        StorageError: if the database fails.
    """
    async with db.transaction() as s:
        rows = (await s.execute(select(ApiKey).order_by(ApiKey.id))).scalars()
        return [_info(r) for r in rows]


async def authenticate(db: Database, presented: str) -> Principal:
    """Check a presented API key.

    Returns:
        The verified caller.

    Raises:
        Unauthenticated: malformed, unknown, wrong or revoked key (one message
            for all, so a caller learns nothing about which).
    """
    row = await authenticate_api_key(db, ApiKey, _KEYS, presented)
    return Principal(key_id=row.key_id, name=row.name, role=Role(row.role))
