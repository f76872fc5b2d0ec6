"""Database tables of the CA/OCSP/TSA: issued certificates and the TSA serial counter.

Serial numbers are up to 159 bits (RFC 5280 allows 20 octets), more than any
SQL integer type holds, so they are stored as 40 lowercase hex digits,
zero-padded: a fixed-width string whose primary-key index serves the OCSP
responder's single-row lookup.
"""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "MIGRATIONS",
    "Base",
    "CertStatus",
    "IssuedCertificate",
    "TsaSerialCounter",
    "UtcDateTime",
    "serial_to_key",
]

#: The Alembic script directory of these tables.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def serial_to_key(serial: int) -> str:
    """The stored form of a certificate serial: 40 lowercase hex digits.

    Raises:
        ValueError: for a serial outside 1..2^160-1 (programmer misuse).
    """
    if not 0 < serial < 1 << 160:
        raise ValueError("certificate serial out of range")
    return f"{serial:040x}"


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite would drop the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError("UtcDateTime needs an aware datetime")
        utc: dt.datetime = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class CertStatus(enum.Enum):
    """Stored status of an issued certificate; the value is the column text."""

    GOOD = "good"
    REVOKED = "revoked"


class Base(DeclarativeBase):
    """Declarative base of the ``ca_tsa`` tables (its own Alembic history)."""


class IssuedCertificate(Base):
    """One certificate issued by this CA."""

    __tablename__ = "ca_issued_certificate"

    #: 40 hex digits, see :func:`serial_to_key`.
    serial: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    #: ``auth`` or ``sign`` (jplink.security.certs.CertProfile values).
    profile: Mapped[str] = mapped_column(String(16))
    #: ``<instance>/<memberClass>/<memberCode>``.
    member_id: Mapped[str] = mapped_column(String(200))
    #: The security server code for ``auth`` certificates.
    server_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    not_before: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    not_after: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    #: ``good`` or ``revoked`` (CertStatus values).
    status: Mapped[str] = mapped_column(String(16), default=CertStatus.GOOD.value)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    #: x509.ReasonFlags value (``keyCompromise`` ...) when revoked.
    revocation_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: Hex SHA-256 of the DER, for lookups by certificate hash.
    sha256: Mapped[str] = mapped_column(String(64))
    der: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        UniqueConstraint("sha256", name="uq_ca_issued_certificate_sha256"),
        Index("ix_ca_issued_certificate_member_id", "member_id"),
        Index("ix_ca_issued_certificate_issued_at", "issued_at"),
    )


class TsaSerialCounter(Base):
    """The next unreserved time-stamp serial number; a single row with ``id`` 1."""

    __tablename__ = "ca_tsa_serial_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_serial: Mapped[int] = mapped_column(BigInteger)
