"""Configuration-signing keys with two-stage rollover.

Each source type (``internal``: the instance's own ``internalconf``;
``external``: ``externalconf`` for federation partners) has its own keys. A
key's life:

1. ``add``: a fresh key pair and a self-signed verification certificate. The
   key is *standby*: its certificate is listed in the next anchor and in the
   shared parameters' ``source/internalVerificationCert`` (or
   ``externalVerificationCert``), but it does not sign yet. The first key of a
   source type is activated at once (there is nothing to roll over from).
2. Distribute the new anchor to the security servers (out of band).
3. ``activate``: the key now signs the directory; the previous active key
   becomes standby. Security servers that trust either certificate follow
   (PR-GCONF: "the CS publishes the next key in shared params before
   switching").
4. ``remove`` the old key: its certificate leaves the anchor and the shared
   parameters. The active key can never be removed.

Private keys are software keys: PKCS#8 PEM files with mode 0600 in
``<home>/conf-signing-keys/`` (directory 0700). A PKCS#11 token would plug in at
:func:`load_signer`, returning a token-backed ``RSAPrivateKey`` instead of the
file key; nothing else touches the private key. Every change is one
transaction with its audit row, so the publisher sees it as a registry change.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import ConfigurationError, Conflict, NotFound
from jplink.security.keys import (
    KeyType,
    PrivateKey,
    generate_private_key,
    load_private_key_pem,
    serialize_private_key_pem,
)
from jplink.storage import Database

from .. import audit
from .._lookup import instance_identifier
from ..models import ConfSigningKey

__all__ = [
    "KEY_DIR",
    "ConfSigner",
    "SigningKeyInfo",
    "SigningKeySet",
    "SourceType",
    "activate_signing_key",
    "add_signing_key",
    "key_file",
    "list_signing_keys",
    "load_signer",
    "load_signing_key_set",
    "remove_signing_key",
]

#: Directory under the central home holding the private keys.
KEY_DIR = "conf-signing-keys"
#: Lifetime of a verification certificate; only its public key matters.
_CERT_VALIDITY = dt.timedelta(days=20 * 365)


class SourceType(enum.Enum):
    """Which directory a key signs; the value is the stored word."""

    INTERNAL = "internal"
    EXTERNAL = "external"


@dataclass(frozen=True, slots=True)
class SigningKeyInfo:
    """A configuration-signing key as listed (never the private key).

    Attributes:
        key_id: hex, the first 20 characters of SHA-256 over the public key.
        source_type: internal or external.
        active: whether it signs the directory now.
        cert: its self-signed verification certificate.
        created_at: when it was added.
        activated_at: when it last became active, if ever.
    """

    key_id: str
    source_type: SourceType
    active: bool
    cert: x509.Certificate
    created_at: dt.datetime
    activated_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ConfSigner:
    """The active key of a source type with its verification certificate."""

    key_id: str
    key: PrivateKey
    cert: x509.Certificate


@dataclass(frozen=True, slots=True)
class SigningKeySet:
    """What generation needs for one source type.

    Attributes:
        signer: the active key.
        verification_certs: every current key's certificate (active first),
            as published in anchors and shared parameters.
    """

    signer: ConfSigner
    verification_certs: tuple[x509.Certificate, ...]


def key_file(home: Path, key_id: str) -> Path:
    """Where the private key of ``key_id`` lives."""
    return home / KEY_DIR / f"{key_id}.pem"


def _key_id(key: PrivateKey) -> str:
    spki = key.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()[:20]


def _self_signed(
    key: PrivateKey, instance: str, source: SourceType, key_id: str, now: dt.datetime
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"JP-LINK {instance}"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"{source.value} configuration signing {key_id}"
            ),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def _write_key(path: Path, pem: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # O_EXCL + 0600 from the start: the key is never readable by others, even
    # briefly, and an existing file is never overwritten.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())


def _info(row: ConfSigningKey) -> SigningKeyInfo:
    return SigningKeyInfo(
        key_id=row.key_id,
        source_type=SourceType(row.source_type),
        active=row.active,
        cert=x509.load_der_x509_certificate(row.cert_der),
        created_at=audit.aware(row.created_at),
        activated_at=audit.aware(row.activated_at) if row.activated_at else None,
    )


async def add_signing_key(
    db: Database,
    actor: str,
    home: Path,
    source_type: SourceType,
    *,
    now: dt.datetime,
    key_type: KeyType = KeyType.RSA,
) -> SigningKeyInfo:
    """Generate a new signing key and its self-signed verification certificate.

    Args:
        db: the central server's database.
        actor: who does it (audit log).
        home: the central home; the key file goes under :data:`KEY_DIR`.
        source_type: internal or external configuration.
        now: start of the certificate's validity and the audit time.
        key_type: RSA 2048 (X-Road's default) or EC P-256.

    Returns:
        The new key; active when it is the first of its source type.

    Raises:
        Conflict: the server is not initialised.
        StorageError: the database fails (the key file is then removed).
    """
    key = generate_private_key(key_type)
    key_id = _key_id(key)
    path = key_file(home, key_id)
    _write_key(path, serialize_private_key_pem(key))
    try:
        async with db.transaction() as s:
            instance = await instance_identifier(s)
            cert = _self_signed(key, instance, source_type, key_id, now)
            first = (
                await s.execute(
                    select(ConfSigningKey.id).where(
                        ConfSigningKey.source_type == source_type.value
                    )
                )
            ).first() is None
            row = ConfSigningKey(
                key_id=key_id,
                source_type=source_type.value,
                active=first,
                cert_der=cert.public_bytes(Encoding.DER),
                created_at=now,
                activated_at=now if first else None,
            )
            s.add(row)
            audit.record(
                s,
                actor=actor,
                action="confKey.add",
                target=key_id,
                now=now,
                detail={"sourceType": source_type.value, "active": first},
            )
            await s.flush()
            info = _info(row)
    except BaseException:
        # No key file may outlive a failed transaction.
        path.unlink(missing_ok=True)
        raise
    return info


async def _row(session: AsyncSession, key_id: str) -> ConfSigningKey:
    row = (
        await session.execute(
            select(ConfSigningKey).where(ConfSigningKey.key_id == key_id)
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"Configuration signing key {key_id!r} does not exist")
    return row


async def activate_signing_key(
    db: Database, actor: str, key_id: str, *, now: dt.datetime
) -> SigningKeyInfo:
    """Make a standby key the active one of its source type.

    Raises:
        NotFound: no such key.
        Conflict: it is already active.
    """
    async with db.transaction() as s:
        row = await _row(s, key_id)
        if row.active:
            raise Conflict(f"Configuration signing key {key_id} is already active")
        others = list(
            (
                await s.execute(
                    select(ConfSigningKey).where(
                        ConfSigningKey.source_type == row.source_type,
                        ConfSigningKey.active.is_(True),
                    )
                )
            ).scalars()
        )
        previous = [o.key_id for o in others]
        for other in others:
            other.active = False
        row.active = True
        row.activated_at = now
        audit.record(
            s,
            actor=actor,
            action="confKey.activate",
            target=key_id,
            now=now,
            detail={"sourceType": row.source_type, "previous": previous},
        )
        info = _info(row)
    return info


async def remove_signing_key(
    db: Database, actor: str, home: Path, key_id: str, *, now: dt.datetime
) -> SigningKeyInfo:
    """Remove a standby key: its certificate leaves anchors and shared params.

    Raises:
        NotFound: no such key.
        Conflict: the key is active (activate its successor first).
    """
    async with db.transaction() as s:
        row = await _row(s, key_id)
        if row.active:
            raise Conflict(
                f"Configuration signing key {key_id} is active; activate another "
                "key of the same source type first"
            )
        info = _info(row)
        await s.delete(row)
        audit.record(
            s,
            actor=actor,
            action="confKey.remove",
            target=key_id,
            now=now,
            detail={"sourceType": row.source_type},
        )
    # Only after the commit: a failed transaction keeps both row and file.
    with contextlib.suppress(FileNotFoundError):
        key_file(home, key_id).unlink()
    return info


async def list_signing_keys(db: Database) -> list[SigningKeyInfo]:
    """All current keys: by source type, active first, then oldest first.

    Raises:
        StorageError: if the database fails.
    """
    async with db.transaction() as s:
        rows = (
            await s.execute(
                select(ConfSigningKey).order_by(
                    ConfSigningKey.source_type,
                    ConfSigningKey.active.desc(),
                    ConfSigningKey.id,
                )
            )
        ).scalars()
        return [_info(r) for r in rows]


def load_signer(home: Path, info: SigningKeyInfo) -> ConfSigner:
    """Load the private key of ``info`` from its file (trusted local storage).

    The PKCS#11 plug-in point: a token-backed key would be returned here.

    Raises:
        ConfigurationError: the file is missing, readable by others, not a
            key, or not the key of the certificate.
    """
    path = key_file(home, info.key_id)
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigurationError(f"{path} must not be readable by others (0600)")
        key = load_private_key_pem(path.read_bytes(), where=str(path))
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read configuration signing key {path}: {exc.strerror}"
        ) from exc
    spki = PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        Encoding.DER, spki
    ) != info.cert.public_key().public_bytes(Encoding.DER, spki):
        raise ConfigurationError(f"{path} is not the key of its certificate")
    return ConfSigner(info.key_id, key, info.cert)


def load_signing_key_set(
    home: Path, keys: list[SigningKeyInfo], source_type: SourceType
) -> SigningKeySet:
    """The active signer and all verification certificates of a source type.

    Args:
        home: the central home (key files).
        keys: from :func:`list_signing_keys`.
        source_type: internal or external.

    Raises:
        Conflict: no active key of that source type (add one first).
        ConfigurationError: its key file is unusable.
    """
    mine = [k for k in keys if k.source_type is source_type]
    active = [k for k in mine if k.active]
    if not active:
        raise Conflict(
            f"No active {source_type.value} configuration signing key "
            f"(run 'jplink central conf keys add"
            f"{' --external' if source_type is SourceType.EXTERNAL else ''}')"
        )
    ordered = active + [k for k in mine if not k.active]
    return SigningKeySet(load_signer(home, active[0]), tuple(k.cert for k in ordered))
