"""Admin API keys shared by the components: their form, creation and check.

A key looks like ``<prefix>_<keyid>_<secret>``: the 16-hex key id finds the
stored entry, and the SHA-256 of the whole key is compared in constant time
(:func:`jplink.web.verify_secret`), so an unknown id costs as long as a wrong
secret. The plain key is shown exactly once, at creation; only its hash is
kept. What a key may do (roles) and where it is kept (a table, a file) stay
with each component; this module holds the part that is the same:

- :class:`ApiKeyFormat` makes new keys (:meth:`ApiKeyFormat.new_key`) and
  reads the key id out of a presented one (:meth:`ApiKeyFormat.key_id_of`);
- :func:`find_api_key` and :func:`authenticate_api_key` look a key up in a
  component's table, whose model has the columns of :class:`ApiKeyRow`.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import Unauthenticated
from ..web import hash_secret, new_secret, verify_secret
from .db import Database

__all__ = [
    "ApiKeyFormat",
    "ApiKeyRow",
    "NewApiKey",
    "authenticate_api_key",
    "find_api_key",
]


class ApiKeyRow(Protocol):
    """The columns an API key table's model has (besides name and roles).

    Declared as a row reads them; on the model class each is a column.
    """

    key_id: str
    key_hash: str
    revoked_at: dt.datetime | None


R = TypeVar("R", bound=ApiKeyRow)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly made key.

    Attributes:
        key_id: the 16 hex digits that find the stored entry.
        key: the plain key, to be shown once and never stored.
        key_hash: the hex SHA-256 of ``key``, stored in its place.
    """

    key_id: str
    key: str
    key_hash: str


@functools.lru_cache(maxsize=8)
def _pattern(prefix: str, min_secret: int, max_secret: int) -> re.Pattern[str]:
    return re.compile(
        rf"{re.escape(prefix)}_([0-9a-f]{{16}})_[A-Za-z0-9_-]{{{min_secret},{max_secret}}}"
    )


@dataclass(frozen=True, slots=True)
class ApiKeyFormat:
    """The form of one component's keys: ``<prefix>_<keyid>_<secret>``.

    Attributes:
        prefix: names the component (``jpss``, ``jpcs``, ``jpad``).
        min_secret: the shortest secret part a presented key may have.
        max_secret: the longest secret part a presented key may have.
    """

    prefix: str
    min_secret: int = 20
    max_secret: int = 100

    def new_key(self) -> NewApiKey:
        """A new key with a random id and a 256-bit random secret."""
        key_id = secrets.token_hex(8)
        key = f"{self.prefix}_{key_id}_{new_secret()}"
        return NewApiKey(key_id=key_id, key=key, key_hash=hash_secret(key))

    def key_id_of(self, presented: str) -> str:
        """The key id of a presented key, or ``""`` when it is not of this form.

        ``""`` finds no entry, so a malformed key is then refused like an
        unknown one, in the same time.
        """
        match = _pattern(self.prefix, self.min_secret, self.max_secret).fullmatch(
            presented
        )
        return match.group(1) if match else ""


async def find_api_key(session: AsyncSession, model: type[R], key_id: str) -> R | None:
    """The row of ``model`` with ``key_id``, or None.

    Raises:
        StorageError: the database failed.
    """
    stmt = select(model).filter_by(key_id=key_id)
    row: R | None = (await session.execute(stmt)).scalar_one_or_none()
    return row


async def authenticate_api_key(
    db: Database, model: type[R], key_format: ApiKeyFormat, presented: str
) -> R:
    """Check a presented key against a component's API key table.

    Args:
        db: the component's database.
        model: the table's model class.
        key_format: the component's key form.
        presented: the key as the caller sent it.

    Returns:
        The verified key's row (not revoked, secret matching).

    Raises:
        Unauthenticated: malformed, unknown, wrong or revoked key (one message
            for all, so a caller learns nothing about which).
        StorageError: the database failed.
    """
    key_id = key_format.key_id_of(presented)
    async with db.transaction() as session:
        row = await find_api_key(session, model, key_id)
    # Constant time, and as long for an unknown id as for a wrong secret.
    verify_secret(presented, row.key_hash if row is not None else None)
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("The API key is not valid")
    return row
