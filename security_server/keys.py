"""Keys on the software token: generation, listing, loading and deletion.

A key is either an ``auth`` key (the server's TLS identity) or a ``sign`` key
of one member (the owner or the member of a client). Its private half is a
PIN-encrypted PKCS#8 file in the token directory (:mod:`.keystore`); the row
keeps the public key, so certificates are matched to keys without the PIN.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import InvalidRequest, NotFound, StorageError
from jplink.identifiers import ClientId, parse_client_id
from jplink.security.certs import CertProfile
from jplink.security.keys import KeyType, PrivateKey, generate_private_key
from jplink.storage import Database

from . import audit
from .identity import load_identity
from .keystore import decrypt_private_key, encrypt_private_key, write_private_file
from .models import Certificate, Client, TokenKey
from .softtoken import UnlockedToken, new_key_file_name, unlock

__all__ = [
    "KeyInfo",
    "delete_key",
    "find_key",
    "generate_key",
    "key_id_of",
    "list_keys",
    "load_private_key",
]


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as shown to operators.

    Attributes:
        key_id: hex id (first 40 hex digits of SHA-256 of the public key DER).
        usage: ``auth`` or ``sign``.
        key_type: ``rsa`` or ``ec``.
        label: the operator's label.
        member: the member a sign key signs for; None for auth keys.
        certificates: hex SHA-256 of each imported certificate.
        created_at: when it was generated.
    """

    key_id: str
    usage: CertProfile
    key_type: KeyType
    label: str
    member: ClientId | None
    certificates: tuple[str, ...]
    created_at: dt.datetime


def key_id_of(public_key_der: bytes) -> str:
    """The key id of a SubjectPublicKeyInfo (SHA-256, first 160 bits, hex)."""
    return hashlib.sha256(public_key_der).hexdigest()[:40]


def _info(row: TokenKey, certs: list[str]) -> KeyInfo:
    return KeyInfo(
        key_id=row.key_id,
        usage=CertProfile(row.usage),
        key_type=KeyType(row.key_type),
        label=row.label,
        member=parse_client_id(row.member) if row.member else None,
        certificates=tuple(certs),
        created_at=audit.aware(row.created_at),
    )


async def find_key(session: AsyncSession, key_id: str) -> TokenKey:
    """The key row with ``key_id`` (a unique prefix of at least 8 digits works).

    Raises:
        NotFound: code ``KeyNotFound`` for no key or an ambiguous prefix.
    """
    if len(key_id) < 8:
        raise NotFound(
            f"No key {key_id!r} (give at least 8 digits)", code="KeyNotFound"
        )
    rows = (
        (
            await session.execute(
                select(TokenKey).where(
                    TokenKey.key_id.startswith(key_id, autoescape=True)
                )
            )
        )
        .scalars()
        .all()
    )
    if len(rows) != 1:
        raise NotFound(f"No single key matches {key_id!r}", code="KeyNotFound")
    return rows[0]


async def _check_sign_member(session: AsyncSession, member: ClientId) -> None:
    """A sign key's member must be the owner or the member of a client."""
    if member.subsystem_code is not None:
        raise InvalidRequest("Sign keys belong to members, not subsystems")
    identity = await load_identity(session)
    if member == identity.owner:
        return
    prefix = f"SUBSYSTEM:{str(member).removeprefix('MEMBER:')}/"
    found = await session.execute(
        select(Client.id).where(
            (Client.identifier == str(member))
            | Client.identifier.startswith(prefix, autoescape=True)
        )
    )
    if found.first() is None:
        raise NotFound(
            f"{member} is neither the owner nor a client of this server",
            code="ClientNotFound",
        )


async def generate_key(
    db: Database,
    token_dir: Path,
    unlocked: UnlockedToken,
    actor: str,
    *,
    usage: CertProfile,
    member: ClientId | None = None,
    key_type: KeyType = KeyType.RSA,
    label: str = "",
    now: dt.datetime,
) -> KeyInfo:
    """Generate a key pair and store it encrypted with the token PIN.

    Args:
        db: the server's database.
        token_dir: the token directory.
        unlocked: a logged-in token.
        actor: who (audit log).
        usage: ``auth`` or ``sign``.
        member: the member a sign key signs for (required for ``sign``,
            refused for ``auth``).
        key_type: RSA-2048 (default) or EC P-256.
        label: free text.
        now: when.

    Returns:
        The new key.

    Raises:
        InvalidRequest: a member missing (sign) or given (auth).
        NotFound: the member is not the owner or a client's member; the
            server or token is not initialised.
        Unauthenticated: code ``PinIncorrect``.
        StorageError: the database or the key file failed (nothing is kept).
    """
    if usage is CertProfile.SIGN and member is None:
        raise InvalidRequest("A sign key needs the member it signs for")
    if usage is CertProfile.AUTH and member is not None:
        raise InvalidRequest("An auth key belongs to the server, not to a member")
    private = generate_private_key(key_type)
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_id = key_id_of(spki)
    name = new_key_file_name(key_id)
    path: Path | None = None
    try:
        async with db.transaction() as session:
            await unlock(session, unlocked.pin)
            await load_identity(session)
            if member is not None:
                await _check_sign_member(session, member)
            row = TokenKey(
                key_id=key_id,
                label=label,
                usage=usage.value,
                key_type=key_type.value,
                public_key_der=spki,
                file_name=name,
                member=str(member) if member else None,
                created_at=now,
            )
            session.add(row)
            audit.record(
                session,
                actor=actor,
                action="key.generate",
                target=key_id,
                now=now,
                detail={"usage": usage.value, "type": key_type.value, "member": member},
            )
            await session.flush()
            path = write_private_file(
                token_dir, name, encrypt_private_key(private, unlocked.pin)
            )
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    return _info(row, [])


async def list_keys(db: Database) -> list[KeyInfo]:
    """Every key with its certificates' hashes, oldest first.

    Raises:
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        rows = (await session.execute(select(TokenKey).order_by(TokenKey.id))).scalars()
        certs: dict[int, list[str]] = {}
        for key_pk, digest in await session.execute(
            select(Certificate.key_id, Certificate.cert_sha256).order_by(Certificate.id)
        ):
            certs.setdefault(key_pk, []).append(digest)
        return [_info(r, certs.get(r.id, [])) for r in rows]


async def load_private_key(
    db: Database, token_dir: Path, unlocked: UnlockedToken, key_id: str
) -> PrivateKey:
    """Decrypt a key for use (signing a CSR, a message, a TLS handshake).

    Raises:
        NotFound: code ``KeyNotFound``.
        Unauthenticated: code ``PinIncorrect``.
        StorageError: the key file is missing or damaged.
    """
    async with db.transaction() as session:
        row = await find_key(session, key_id)
        file_name = row.file_name
    path = token_dir / file_name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StorageError(f"Cannot read key file {path}") from exc
    # PBKDF2 with 600 000 rounds: ~0.1 s of CPU, kept off the event loop.
    return await asyncio.to_thread(
        decrypt_private_key, data, unlocked.pin, where=str(path)
    )


async def delete_key(
    db: Database, token_dir: Path, actor: str, key_id: str, *, now: dt.datetime
) -> None:
    """Delete a key with its certificates and CSRs, then its file.

    Raises:
        NotFound: code ``KeyNotFound``.
        StorageError: the database failed (nothing is deleted).
    """
    async with db.transaction() as session:
        row = await find_key(session, key_id)
        file_name, full_id = row.file_name, row.key_id
        await session.delete(row)
        audit.record(session, actor=actor, action="key.delete", target=full_id, now=now)
    with contextlib.suppress(OSError):
        (token_dir / file_name).unlink()
