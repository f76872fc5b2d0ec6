"""The software token: initialisation, PIN checks, login state, PIN change.

The PIN is never stored (only a scrypt verifier, see :mod:`.keystore`), and
being logged in is a matter of process memory, not a database row: a
successful :func:`login` returns an :class:`UnlockedToken` that the caller
holds and passes to whatever needs private keys, and logging out is dropping
it. :class:`TokenLogin` is that holder for a long-running process; each CLI
command logs in for its own duration.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import Conflict, NotFound, StorageError, Unauthenticated
from jplink.storage import Database

from . import audit
from .keystore import (
    SCRYPT_LOG_N,
    check_pin,
    decrypt_private_key,
    encrypt_private_key,
    make_pin_verifier,
    validate_new_pin,
    write_private_file,
)
from .models import SoftwareToken, TokenKey

__all__ = [
    "TokenInfo",
    "TokenLogin",
    "UnlockedToken",
    "change_pin",
    "get_token",
    "init_token",
    "login",
    "new_key_file_name",
    "unlock",
]

_TOKEN_ID = 0  # X-Road's software token is token "0"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """The token as shown to operators (no secrets)."""

    label: str
    created_at: dt.datetime
    pin_changed_at: dt.datetime
    key_count: int


@dataclass(frozen=True, slots=True)
class UnlockedToken:
    """Proof of a successful login: the checked PIN, held in memory only."""

    pin: str = field(repr=False)


class TokenLogin:
    """The login state of one process (the server will hold one of these)."""

    def __init__(self) -> None:
        self._unlocked: UnlockedToken | None = None

    @property
    def is_logged_in(self) -> bool:
        return self._unlocked is not None

    async def login(self, db: Database, pin: str) -> UnlockedToken:
        """Check ``pin`` and keep the token unlocked in this process.

        Raises:
            NotFound: code ``TokenNotInitialized``.
            Unauthenticated: code ``PinIncorrect``.
        """
        self._unlocked = await login(db, pin)
        return self._unlocked

    def logout(self) -> None:
        """Forget the PIN."""
        self._unlocked = None

    def unlocked(self) -> UnlockedToken:
        """The unlocked token.

        Raises:
            Unauthenticated: code ``TokenNotActive`` when logged out.
        """
        if self._unlocked is None:
            raise Unauthenticated(
                "The software token is not logged in", code="TokenNotActive"
            )
        return self._unlocked


async def _load(session: AsyncSession) -> SoftwareToken:
    row = await session.get(SoftwareToken, _TOKEN_ID)
    if row is None:
        raise NotFound(
            "The software token is not initialised (run 'jplink ss token init')",
            code="TokenNotInitialized",
        )
    return row


async def unlock(session: AsyncSession, pin: str) -> UnlockedToken:
    """Check ``pin`` inside an open transaction.

    Raises:
        NotFound: code ``TokenNotInitialized``.
        Unauthenticated: code ``PinIncorrect``.
    """
    row = await _load(session)
    check_pin(pin, row.pin_salt, row.pin_verifier, row.scrypt_log_n)
    return UnlockedToken(pin)


async def init_token(
    db: Database, actor: str, *, pin: str, label: str = "softToken-0", now: dt.datetime
) -> TokenInfo:
    """Create the software token protected by ``pin``.

    Raises:
        InvalidRequest: code ``WeakPin`` for a PIN that breaks the policy.
        Conflict: code ``TokenAlreadyInitialized``.
        StorageError: the database failed.
    """
    validate_new_pin(pin)
    salt, verifier = make_pin_verifier(pin)
    async with db.transaction() as session:
        if await session.get(SoftwareToken, _TOKEN_ID) is not None:
            raise Conflict(
                "The software token is already initialised",
                code="TokenAlreadyInitialized",
            )
        session.add(
            SoftwareToken(
                id=_TOKEN_ID,
                label=label,
                pin_salt=salt,
                pin_verifier=verifier,
                scrypt_log_n=SCRYPT_LOG_N,
                created_at=now,
                pin_changed_at=now,
            )
        )
        audit.record(session, actor=actor, action="token.init", target=label, now=now)
    return TokenInfo(label, now, now, 0)


async def get_token(db: Database) -> TokenInfo:
    """The token's description.

    Raises:
        NotFound: code ``TokenNotInitialized``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        row = await _load(session)
        count = (await session.execute(select(func.count(TokenKey.id)))).scalar_one()
        return TokenInfo(
            row.label,
            audit.aware(row.created_at),
            audit.aware(row.pin_changed_at),
            int(count),
        )


async def login(db: Database, pin: str) -> UnlockedToken:
    """Check the PIN.

    Returns:
        The unlocked token, to be held in memory by the caller.

    Raises:
        NotFound: code ``TokenNotInitialized``.
        Unauthenticated: code ``PinIncorrect``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        return await unlock(session, pin)


async def change_pin(
    db: Database,
    token_dir: Path,
    actor: str,
    *,
    old_pin: str,
    new_pin: str,
    now: dt.datetime,
) -> UnlockedToken:
    """Re-encrypt every key with a new PIN, all or nothing.

    Each key is written to a new file; the rows point at the new files and the
    verifier changes in one transaction; the old files are removed only after
    the commit. A crash at any point leaves a token that opens with exactly one
    of the two PINs (plus, at worst, unreferenced files).

    Raises:
        NotFound: code ``TokenNotInitialized``.
        Unauthenticated: code ``PinIncorrect`` for a wrong old PIN, or when a
            key file does not open with it (nothing is changed).
        InvalidRequest: code ``WeakPin`` for a new PIN that breaks the policy.
        StorageError: the database or a file failed (nothing is changed).
    """
    validate_new_pin(new_pin)
    written: list[Path] = []
    old_files: list[Path] = []
    try:
        async with db.transaction() as session:
            row = await _load(session)
            check_pin(old_pin, row.pin_salt, row.pin_verifier, row.scrypt_log_n)
            for key in (await session.execute(select(TokenKey))).scalars():
                path = token_dir / key.file_name
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise StorageError(f"Cannot read key file {path}") from exc
                private = decrypt_private_key(data, old_pin, where=str(path))
                name = new_key_file_name(key.key_id)
                written.append(
                    write_private_file(
                        token_dir, name, encrypt_private_key(private, new_pin)
                    )
                )
                old_files.append(path)
                key.file_name = name
            row.pin_salt, row.pin_verifier = make_pin_verifier(new_pin)
            row.scrypt_log_n = SCRYPT_LOG_N
            row.pin_changed_at = now
            audit.record(
                session,
                actor=actor,
                action="token.change-pin",
                target=row.label,
                now=now,
            )
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    for path in old_files:
        with contextlib.suppress(OSError):
            path.unlink()
    return UnlockedToken(new_pin)


def new_key_file_name(key_id: str) -> str:
    """A fresh, unique file name for a key's encrypted PKCS#8 file."""
    return f"{key_id}.{secrets.token_hex(4)}.p8"
