"""Certificate signing requests for token keys, per the JP-LINK profile.

``auth`` CSRs carry the server identity (owner member and server code),
``sign`` CSRs the identity of the key's member, both with exactly the subject
:func:`jplink.security.certs.build_subject_name` derives, so the CA's
:func:`~jplink.security.certs.verify_csr_subject` accepts them unchanged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import StorageError
from jplink.identifiers import ClientId, parse_client_id
from jplink.security.certs import (
    CertProfile,
    MemberSubject,
    build_subject_name,
    verify_csr,
    verify_csr_subject,
)
from jplink.security.keys import signature_hash
from jplink.storage import Database

from . import audit
from .identity import ServerInfo, load_identity
from .keys import find_key
from .keystore import decrypt_private_key
from .models import Client, Csr, TokenKey
from .softtoken import UnlockedToken, unlock

__all__ = ["CsrInfo", "create_csr", "list_csrs", "member_name"]


@dataclass(frozen=True, slots=True)
class CsrInfo:
    """A CSR made for a key."""

    id: int
    key_id: str
    usage: CertProfile
    member: ClientId
    subject: str
    der: bytes
    created_at: dt.datetime

    @property
    def pem(self) -> bytes:
        """The PEM form, as sent to a CA."""
        return x509.load_der_x509_csr(self.der).public_bytes(serialization.Encoding.PEM)


async def member_name(
    session: AsyncSession, identity: ServerInfo, member: ClientId
) -> str:
    """The name of the owner or of a client member (its ``O`` attribute).

    Falls back to the name of a subsystem client of the member, then to the
    member code, when the member itself is not a client.
    """
    if member == identity.owner:
        return identity.owner_name
    prefix = f"SUBSYSTEM:{str(member).removeprefix('MEMBER:')}/"
    rows = await session.execute(
        select(Client.identifier, Client.name).where(
            (Client.identifier == str(member))
            | Client.identifier.startswith(prefix, autoescape=True)
        )
    )
    names = {ident: name for ident, name in rows}
    return names.get(str(member)) or next(
        (n for n in names.values() if n), member.member_code
    )


async def create_csr(
    db: Database,
    token_dir: Path,
    unlocked: UnlockedToken,
    actor: str,
    key_id: str,
    *,
    now: dt.datetime,
) -> CsrInfo:
    """Make and store a CSR for a key.

    Args:
        db: the server's database.
        token_dir: where the key file is.
        unlocked: a logged-in token (the CSR is signed with the key).
        actor: who (audit log).
        key_id: the key (a unique prefix is enough).
        now: when.

    Returns:
        The CSR (its subject fits the profile for the key's usage).

    Raises:
        NotFound: code ``KeyNotFound``, ``ServerNotInitialized`` or
            ``TokenNotInitialized``.
        Unauthenticated: code ``PinIncorrect``.
        InvalidRequest: the member's name or codes break the profile.
        StorageError: the database or the key file failed.
    """
    async with db.transaction() as session:
        await unlock(session, unlocked.pin)
        identity = await load_identity(session)
        key = await find_key(session, key_id)
        usage = CertProfile(key.usage)
        member = parse_client_id(key.member) if key.member else identity.owner
        subject = identity.member_subject(
            member, await member_name(session, identity, member)
        )
        if usage is CertProfile.SIGN:
            subject = MemberSubject(
                subject.instance,
                subject.member_class,
                subject.member_code,
                subject.member_name,
            )
        name = build_subject_name(usage, subject)
        path = token_dir / key.file_name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StorageError(f"Cannot read key file {path}") from exc
        private = decrypt_private_key(data, unlocked.pin, where=str(path))
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(name)
            .sign(private, signature_hash(private))
        )
        der = request.public_bytes(serialization.Encoding.DER)
        # Check our own output the way the CA will (profile and key policy).
        verify_csr_subject(verify_csr(der).csr, usage, subject)
        row = Csr(
            key_id=key.id,
            usage=usage.value,
            member=str(member),
            subject=name.rfc4514_string(),
            csr_der=der,
            created_at=now,
        )
        session.add(row)
        audit.record(
            session,
            actor=actor,
            action="csr.create",
            target=key.key_id,
            now=now,
            detail={"usage": usage.value, "subject": row.subject},
        )
        await session.flush()
        return CsrInfo(row.id, key.key_id, usage, member, row.subject, der, now)


async def list_csrs(db: Database) -> list[CsrInfo]:
    """Every stored CSR, oldest first.

    Raises:
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        rows = await session.execute(
            select(Csr, TokenKey.key_id).join(TokenKey).order_by(Csr.id)
        )
        return [
            CsrInfo(
                c.id,
                kid,
                CertProfile(c.usage),
                parse_client_id(c.member),
                c.subject,
                c.csr_der,
                audit.aware(c.created_at),
            )
            for c, kid in rows
        ]
