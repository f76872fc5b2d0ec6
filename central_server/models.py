"""The central server's registry as SQLAlchemy 2.0 typed ORM models.

One table per concept of the X-Road central server: member classes, members,
subsystems, security servers with their registered authentication-certificate
hashes and clients, global groups, approved CAs and TSAs, system parameters,
member-code and certificate requests, API keys and the audit log. The schema
is created by Alembic (``central_server/migrations``), never by ``create_all``
in production code.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jplink.storage.audit import AuditLogColumns

__all__ = [
    "ApiKey",
    "ApprovedCa",
    "ApprovedTsa",
    "AuditEntry",
    "AuthCert",
    "Base",
    "CertificateRequest",
    "ConfSigningKey",
    "GlobalGroup",
    "GlobalGroupMember",
    "IntermediateCa",
    "Member",
    "MemberClass",
    "MemberCodeRequest",
    "SecurityServer",
    "ServerClient",
    "Subsystem",
    "SystemParameter",
]

_CODE = 255  # X-Road identifier parts are varchar(255)
_TS = DateTime(timezone=True)


class Base(DeclarativeBase):
    """Declarative base of every central-server table."""


class SystemParameter(Base):
    """A named system parameter (instance identifier, freshness limits ...)."""

    __tablename__ = "system_parameter"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MemberClass(Base):
    __tablename__ = "member_class"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(_CODE), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class Member(Base):
    __tablename__ = "member"
    __table_args__ = (UniqueConstraint("member_class_id", "member_code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_class_id: Mapped[int] = mapped_column(ForeignKey("member_class.id"))
    member_code: Mapped[str] = mapped_column(String(_CODE))
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(_TS)


class Subsystem(Base):
    __tablename__ = "subsystem"
    __table_args__ = (UniqueConstraint("member_id", "subsystem_code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    subsystem_code: Mapped[str] = mapped_column(String(_CODE))
    name: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(_TS)


class SecurityServer(Base):
    __tablename__ = "security_server"
    __table_args__ = (UniqueConstraint("owner_id", "server_code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    server_code: Mapped[str] = mapped_column(String(_CODE))
    address: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(_TS)
    #: Set by an approved maintenanceModeEnable (shared params V5+
    #: ``inMaintenanceMode``); added by migration 0003_management_requests.
    in_maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    maintenance_message: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuthCert(Base):
    """A registered authentication certificate of a security server."""

    __tablename__ = "auth_cert"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_id: Mapped[int] = mapped_column(
        ForeignKey("security_server.id", ondelete="CASCADE")
    )
    #: base64 SHA-256 of the DER certificate, as shared-params ``authCertHash``.
    cert_hash: Mapped[str] = mapped_column(String(64), unique=True)
    cert_der: Mapped[bytes] = mapped_column(LargeBinary)


class ServerClient(Base):
    """A member or subsystem registered as a client of a security server."""

    __tablename__ = "server_client"
    __table_args__ = (UniqueConstraint("server_id", "member_id", "subsystem_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_id: Mapped[int] = mapped_column(
        ForeignKey("security_server.id", ondelete="CASCADE")
    )
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    subsystem_id: Mapped[int | None] = mapped_column(
        ForeignKey("subsystem.id"), nullable=True
    )
    #: False after an approved clientDisable (PR-MSERV §2.7), until clientEnable.
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class GlobalGroup(Base):
    __tablename__ = "global_group"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_code: Mapped[str] = mapped_column(String(_CODE), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class GlobalGroupMember(Base):
    __tablename__ = "global_group_member"
    __table_args__ = (UniqueConstraint("group_id", "member_id", "subsystem_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("global_group.id", ondelete="CASCADE")
    )
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    subsystem_id: Mapped[int | None] = mapped_column(
        ForeignKey("subsystem.id"), nullable=True
    )


class ApprovedCa(Base):
    """An approved certification authority (shared-params ``approvedCA``)."""

    __tablename__ = "approved_ca"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    top_ca_cert: Mapped[bytes] = mapped_column(LargeBinary)
    ocsp_url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    ocsp_cert: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    certificate_profile: Mapped[str] = mapped_column(String(255))
    authentication_only: Mapped[bool] = mapped_column(Boolean, default=False)


class IntermediateCa(Base):
    __tablename__ = "intermediate_ca"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ca_id: Mapped[int] = mapped_column(ForeignKey("approved_ca.id", ondelete="CASCADE"))
    cert: Mapped[bytes] = mapped_column(LargeBinary)
    ocsp_url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    ocsp_cert: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class ApprovedTsa(Base):
    __tablename__ = "approved_tsa"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    url: Mapped[str] = mapped_column(String(1024))
    cert: Mapped[bytes] = mapped_column(LargeBinary)


class MemberCodeRequest(Base):
    """An organisation asking to become a member."""

    __tablename__ = "member_code_request"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    admin_email: Mapped[str] = mapped_column(String(320))
    organisation_name: Mapped[str] = mapped_column(Text)
    #: Case-folded name: a second pending request for it is a duplicate.
    organisation_key: Mapped[str] = mapped_column(String(512), index=True)
    member_class: Mapped[str] = mapped_column(String(_CODE))
    requested_code: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    extra_info: Mapped[str] = mapped_column(Text, default="")
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(_TS)
    decided_at: Mapped[dt.datetime | None] = mapped_column(_TS, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    decline_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    member_code: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)


class CertificateRequest(Base):
    """A CSR for an ``auth`` or ``sign`` certificate, issued through the CA."""

    __tablename__ = "certificate_request"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    usage: Mapped[str] = mapped_column(String(8))
    member_class: Mapped[str] = mapped_column(String(_CODE))
    member_code: Mapped[str] = mapped_column(String(_CODE))
    server_code: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    csr_der: Mapped[bytes] = mapped_column(LargeBinary)
    #: hex SHA-256 of the DER CSR: the same CSR twice is a replay.
    csr_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(_TS)
    decided_at: Mapped[dt.datetime | None] = mapped_column(_TS, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    decline_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    certificate_pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Set while status is ``issuing``: the one approver allowed to call the
    #: CA for this request (a random token), who and since when.
    claim_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(_TS, nullable=True)


class ApiKey(Base):
    """An admin API key; only its SHA-256 is stored."""

    __tablename__ = "api_key"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(_TS)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(_TS, nullable=True)


class AuditEntry(AuditLogColumns, Base):
    """Who changed what, when; written in the same transaction as the change."""

    __tablename__ = "audit_log"


class ConfSigningKey(Base):
    """A configuration-signing key; the private key itself is a 0600 file.

    ``source_type`` is ``internal`` or ``external``; per source type exactly one
    key is active (signs the directory) and the others are listed as
    verification certificates only (two-stage rollover).
    """

    __tablename__ = "conf_signing_key"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    source_type: Mapped[str] = mapped_column(String(16), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    cert_der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(_TS)
    activated_at: Mapped[dt.datetime | None] = mapped_column(_TS, nullable=True)
