"""Admin API keys bound to roles, stored hashed.

A key looks like ``jpss_<keyid>_<secret>``: the 16-hex key id finds the row,
and the SHA-256 of the whole key is compared in constant time
(:func:`jplink.web.verify_secret`), so an unknown id costs as long as a wrong
secret. The plain key is returned exactly once, at creation; only its hash
is stored. A revoked key never authenticates again. Every creation and
revocation is written to the audit log in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select

from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.storage import Database
from jplink.storage.apikeys import ApiKeyFormat, authenticate_api_key, find_api_key

from .. import audit
from ..models import AdminApiKey
from .roles import Role, roles_text

__all__ = [
    "ApiKeyInfo",
    "Principal",
    "authenticate",
    "create_api_key",
    "list_api_keys",
    "revoke_api_key",
]

_KEYS = ApiKeyFormat("jpss")
_KEY_ID_RE = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: which key, whose name, which roles."""

    key_id: str
    name: str
    roles: frozenset[Role]

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"apikey:{self.name}({self.key_id})"


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key's public facts (never the key itself)."""

    key_id: str
    name: str
    roles: tuple[Role, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def _roles_of(row: AdminApiKey) -> frozenset[Role]:
    return frozenset(Role(word) for word in row.roles.split())


def _info(row: AdminApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=row.key_id,
        name=row.name,
        roles=tuple(sorted(_roles_of(row), key=lambda r: r.value)),
        created_at=audit.aware(row.created_at),
        revoked_at=audit.aware(row.revoked_at) if row.revoked_at else None,
    )


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("An API key needs a name", code="InvalidField")
    if len(name) > 255 or not name.isprintable() or name != name.strip():
        raise InvalidRequest(
            "An API key name must be 1-255 printable characters without "
            "leading or trailing blanks",
            code="InvalidField",
        )
    return name


async def create_api_key(
    db: Database,
    actor: str,
    *,
    name: str,
    roles: frozenset[Role],
    now: dt.datetime,
) -> tuple[ApiKeyInfo, str]:
    """Create a key; the plain key is returned once and stored only hashed.

    Args:
        db: the server's database.
        actor: who creates it (audit log).
        name: a label naming the key's holder (the audit log shows it).
        roles: the roles the key is bound to (at least one).
        now: when.

    Returns:
        The key's facts and the plain key.

    Raises:
        InvalidRequest: an empty or over-long name, or no roles.
        StorageError: the database failed.
    """
    _check_name(name)
    if not roles:
        raise InvalidRequest("Give at least one role", code="InvalidRole")
    new = _KEYS.new_key()
    key_id = new.key_id
    async with db.transaction() as session:
        row = AdminApiKey(
            key_id=key_id,
            key_hash=new.key_hash,
            name=name,
            roles=roles_text(roles),
            created_at=now,
        )
        session.add(row)
        await session.flush()
        audit.record(
            session,
            actor=actor,
            action="apiKey.create",
            target=key_id,
            now=now,
            detail={"name": name, "roles": row.roles.split()},
        )
        return _info(row), new.key


async def revoke_api_key(
    db: Database, actor: str, key_id: str, *, now: dt.datetime
) -> ApiKeyInfo:
    """Revoke a key; it never authenticates again.

    Raises:
        InvalidRequest: not a key id (16 hex digits).
        NotFound: code ``ApiKeyNotFound``.
        Conflict: code ``ApiKeyRevoked`` when already revoked.
        StorageError: the database failed.
    """
    if not _KEY_ID_RE.fullmatch(key_id):
        raise InvalidRequest(f"{key_id!r} is not an API key id (16 hex digits)")
    async with db.transaction() as session:
        row = await find_api_key(session, AdminApiKey, key_id)
        if row is None:
            raise NotFound(f"API key {key_id} does not exist", code="ApiKeyNotFound")
        if row.revoked_at is not None:
            raise Conflict(f"API key {key_id} is already revoked", code="ApiKeyRevoked")
        row.revoked_at = now
        audit.record(
            session, actor=actor, action="apiKey.revoke", target=key_id, now=now
        )
        return _info(row)


async def list_api_keys(db: Database) -> list[ApiKeyInfo]:
    """All keys (revoked ones too), oldest first.

    Raises:
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        rows = await session.execute(select(AdminApiKey).order_by(AdminApiKey.id))
        return [_info(r) for r in rows.scalars()]


async def authenticate(db: Database, presented: str) -> Principal:
    """Check a presented API key.

    Returns:
        The verified caller.

    Raises:
        Unauthenticated: malformed, unknown, wrong or revoked key (one message
            for all, so a caller learns nothing about which).
        StorageError: the database failed.
    """
    row = await authenticate_api_key(db, AdminApiKey, _KEYS, presented)
    return Principal(key_id=row.key_id, name=row.name, roles=_roles_of(row))
