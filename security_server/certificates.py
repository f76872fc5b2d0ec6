"""Certificates of token keys: import, listing, activation and deletion.

An imported certificate must belong to a key on the token (matched by public
key) and be a valid certificate *for that key's use*: the profile's key usage
(``sign``: nonRepudiation, PROTOCOLS.md §6.4; ``auth``: digitalSignature and
the TLS client-auth purpose), a subject that maps to the key's member (or to
this server for ``auth``) under the JP-LINK profile, and a validity period
that includes ``now``. Anything else is refused and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import (
    CertificateExpired,
    CertificateValidationError,
    Conflict,
    InvalidRequest,
    NotFound,
)
from jplink.identifiers import ClientId, parse_client_id
from jplink.security.certs import CertProfile, member_subject_from_certificate
from jplink.storage import Database

from . import audit
from .identity import load_identity
from .models import Certificate, TokenKey
from .states import CertStatus

__all__ = [
    "CertInfo",
    "delete_certificate",
    "import_certificate",
    "list_certificates",
    "parse_certificate",
    "set_certificate_active",
]


@dataclass(frozen=True, slots=True)
class CertInfo:
    """A certificate on the token, with its state."""

    sha256: str
    key_id: str
    usage: CertProfile
    member: ClientId | None
    subject: str
    issuer: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    status: CertStatus
    active: bool
    ocsp_status: str | None


def _info(row: Certificate, key_id: str) -> CertInfo:
    return CertInfo(
        sha256=row.cert_sha256,
        key_id=key_id,
        usage=CertProfile(row.usage),
        member=parse_client_id(row.member) if row.member else None,
        subject=row.subject,
        issuer=row.issuer,
        serial=row.serial,
        not_before=audit.aware(row.not_before),
        not_after=audit.aware(row.not_after),
        status=CertStatus(row.status),
        active=row.active,
        ocsp_status=row.ocsp_status,
    )


def parse_certificate(data: bytes) -> x509.Certificate:
    """Read a certificate given as PEM or DER.

    Raises:
        InvalidRequest: code ``InvalidCertificate`` for anything else.
    """
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise InvalidRequest(
            "Not an X.509 certificate (PEM or DER)", code="InvalidCertificate"
        ) from exc


def _check_usage(cert: x509.Certificate, usage: CertProfile) -> None:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise CertificateValidationError(
            "The certificate has no keyUsage extension", code="IncorrectCertificate"
        ) from exc
    if usage is CertProfile.SIGN:
        # PROTOCOLS.md §6.4: "It must have the nonRepudiation key-usage bit".
        if not ku.content_commitment:
            raise CertificateValidationError(
                "A signing certificate must have the nonRepudiation key usage",
                code="IncorrectCertificate",
            )
        return
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        purposes = set(eku)
    except x509.ExtensionNotFound:
        purposes = set()
    if not ku.digital_signature or ExtendedKeyUsageOID.CLIENT_AUTH not in purposes:
        raise CertificateValidationError(
            "An authentication certificate needs digitalSignature and the "
            "TLS client-authentication purpose",
            code="IncorrectCertificate",
        )


async def import_certificate(
    db: Database, actor: str, data: bytes, *, now: dt.datetime
) -> CertInfo:
    """Import a certificate issued for one of the token's keys.

    Args:
        db: the server's database.
        actor: who (audit log).
        data: the certificate, PEM or DER.
        now: when (validity is checked at this time).

    Returns:
        The stored certificate (status ``saved``, active).

    Raises:
        InvalidRequest: not a certificate.
        NotFound: code ``KeyNotFound`` when no key on the token has its public key.
        CertificateValidationError: wrong key usage or a subject that does not
            name the key's member (or this server, for ``auth``).
        CertificateExpired: not yet valid or expired at ``now``.
        Conflict: code ``CertificateExists`` when already imported.
        StorageError: the database failed.
    """
    cert = parse_certificate(data)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest()
    async with db.transaction() as session:
        identity = await load_identity(session)
        key = (
            await session.execute(
                select(TokenKey).where(TokenKey.public_key_der == spki)
            )
        ).scalar_one_or_none()
        if key is None:
            raise NotFound(
                "No key on the token matches the certificate's public key",
                code="KeyNotFound",
            )
        usage = CertProfile(key.usage)
        _check_usage(cert, usage)
        subject = member_subject_from_certificate(cert, usage)
        named = ClientId(subject.instance, subject.member_class, subject.member_code)
        expected = parse_client_id(key.member) if key.member else identity.owner
        if named != expected or (
            usage is CertProfile.AUTH
            and subject.server_code != identity.server_id.server_code
        ):
            raise CertificateValidationError(
                f"The certificate names {named}"
                + (f" server {subject.server_code}" if subject.server_code else "")
                + f", but the key belongs to {expected}"
                + (
                    f" server {identity.server_id.server_code}"
                    if usage is CertProfile.AUTH
                    else ""
                ),
                code="IncorrectCertificate",
            )
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise CertificateExpired(
                f"The certificate is not valid at {now.isoformat()} (valid "
                f"{cert.not_valid_before_utc.isoformat()} to "
                f"{cert.not_valid_after_utc.isoformat()})"
            )
        if await session.scalar(
            select(Certificate.id).where(Certificate.cert_sha256 == digest)
        ):
            raise Conflict(
                "The certificate is already imported", code="CertificateExists"
            )
        row = Certificate(
            key_id=key.id,
            cert_sha256=digest,
            cert_der=der,
            usage=usage.value,
            member=key.member,
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            serial=format(cert.serial_number, "x"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            status=CertStatus.SAVED.value,
            active=True,
            imported_at=now,
        )
        session.add(row)
        audit.record(
            session,
            actor=actor,
            action="cert.import",
            target=digest,
            now=now,
            detail={"key": key.key_id, "usage": usage.value},
        )
        await session.flush()
        return _info(row, key.key_id)


async def _find(session: AsyncSession, sha256: str) -> tuple[Certificate, str]:
    sha256 = sha256.lower()
    if len(sha256) < 8:
        raise NotFound("Give at least 8 digits of the hash", code="CertificateNotFound")
    rows = (
        await session.execute(
            select(Certificate, TokenKey.key_id)
            .join(TokenKey)
            .where(Certificate.cert_sha256.startswith(sha256, autoescape=True))
        )
    ).all()
    if len(rows) != 1:
        raise NotFound(
            f"No single certificate matches {sha256!r}", code="CertificateNotFound"
        )
    return rows[0][0], rows[0][1]


async def list_certificates(db: Database) -> list[CertInfo]:
    """Every certificate, oldest first.

    Raises:
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        rows = await session.execute(
            select(Certificate, TokenKey.key_id).join(TokenKey).order_by(Certificate.id)
        )
        return [_info(c, k) for c, k in rows]


async def set_certificate_active(
    db: Database, actor: str, sha256: str, *, active: bool, now: dt.datetime
) -> CertInfo:
    """Activate or deactivate a certificate (an inactive one is never used).

    Raises:
        NotFound: code ``CertificateNotFound``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        row, key_id = await _find(session, sha256)
        row.active = active
        audit.record(
            session,
            actor=actor,
            action="cert.activate" if active else "cert.deactivate",
            target=row.cert_sha256,
            now=now,
        )
        return _info(row, key_id)


async def delete_certificate(
    db: Database, actor: str, sha256: str, *, now: dt.datetime
) -> None:
    """Delete a certificate (the key stays).

    Raises:
        NotFound: code ``CertificateNotFound``.
        StorageError: the database failed.
    """
    async with db.transaction() as session:
        row, _key = await _find(session, sha256)
        await session.delete(row)
        audit.record(
            session, actor=actor, action="cert.delete", target=row.cert_sha256, now=now
        )
