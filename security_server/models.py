"""The security server's tables as SQLAlchemy 2.0 typed ORM models.

The schema is created by Alembic (``security_server/migrations``). State words
are the values of the enums in :mod:`security_server.states`. Identifiers are
stored in their text form (``SUBSYSTEM:JP/COM/1234/sub``) in a unique column,
because a nullable subsystem code would make a composite unique key useless
(SQL treats NULLs as distinct).

The message log's tables live in :mod:`security_server.messagelog_models`
and are importable from here too.

Secrets: private keys are never stored here (they are PIN-encrypted files in
the token directory); the token row keeps only a scrypt verifier of the PIN.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from jplink.storage.audit import AuditLogColumns

from ._model_base import BIGID, CODE_LEN, ID_LEN, TIMESTAMP, Base
from .messagelog_models import (
    LastArchiveDigest,
    MessageLogRecord,
    MessageSignature,
    MessageTimestamp,
    PendingArchiveTransfer,
)

__all__ = [
    "AccessRight",
    "AdminApiKey",
    "AuditEntry",
    "Base",
    "CentralRequest",
    "Certificate",
    "Client",
    "ClientConnection",
    "ClientIsCertificate",
    "Csr",
    "LastArchiveDigest",
    "LocalGroup",
    "LocalGroupMember",
    "MessageLogRecord",
    "MessageSignature",
    "MessageTimestamp",
    "OcspResponse",
    "PendingArchiveTransfer",
    "ServerIdentity",
    "Service",
    "ServiceDescription",
    "SoftwareToken",
    "TokenKey",
]

_ID = ID_LEN
_BIGID = BIGID
_CODE = CODE_LEN
_TS = TIMESTAMP


class ServerIdentity(Base):
    """This server: one row, written by ``init``."""

    __tablename__ = "server_identity"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance: Mapped[str] = mapped_column(String(_CODE))
    owner: Mapped[str] = mapped_column(String(_ID))
    owner_name: Mapped[str] = mapped_column(Text)
    server_code: Mapped[str] = mapped_column(String(_CODE))
    #: hex SHA-256 of the configuration anchor file in force.
    anchor_sha256: Mapped[str] = mapped_column(String(64))
    initialized_at: Mapped[dt.datetime] = mapped_column(_TS)


class Client(Base):
    """A member or subsystem served by this security server."""

    __tablename__ = "client"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(_ID), unique=True)
    name: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(_TS)


class SoftwareToken(Base):
    """The software token; the PIN is never stored, only a scrypt verifier."""

    __tablename__ = "software_token"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(_CODE))
    pin_salt: Mapped[bytes] = mapped_column(LargeBinary)
    pin_verifier: Mapped[bytes] = mapped_column(LargeBinary)
    #: scrypt cost parameter (log2 of N) used for the verifier.
    scrypt_log_n: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(_TS)
    pin_changed_at: Mapped[dt.datetime] = mapped_column(_TS)


class TokenKey(Base):
    """A key pair on the token; the private half is a PIN-encrypted file."""

    __tablename__ = "token_key"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: hex SHA-1-free key id: SHA-256 of the SubjectPublicKeyInfo, first 40 hex.
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(_CODE), default="")
    usage: Mapped[str] = mapped_column(String(8))
    key_type: Mapped[str] = mapped_column(String(8))
    public_key_der: Mapped[bytes] = mapped_column(LargeBinary)
    #: File name (in the token directory) of the encrypted PKCS#8 key.
    file_name: Mapped[str] = mapped_column(String(128), unique=True)
    #: The member a ``sign`` key signs for (text form); None for ``auth``.
    member: Mapped[str | None] = mapped_column(String(_ID), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(_TS)


class Certificate(Base):
    """A certificate of a token key, with its registration and OCSP state."""

    __tablename__ = "certificate"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("token_key.id", ondelete="CASCADE"))
    #: hex SHA-256 of the DER certificate.
    cert_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    cert_der: Mapped[bytes] = mapped_column(LargeBinary)
    usage: Mapped[str] = mapped_column(String(8))
    member: Mapped[str | None] = mapped_column(String(_ID), nullable=True)
    subject: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    serial: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[dt.datetime] = mapped_column(_TS)
    not_after: Mapped[dt.datetime] = mapped_column(_TS)
    status: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    imported_at: Mapped[dt.datetime] = mapped_column(_TS)
    #: Cached OCSP verdict (good / revoked / unknown), None before any check.
    ocsp_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ocsp_this_update: Mapped[dt.datetime | None] = mapped_column(_TS, nullable=True)
    ocsp_next_update: Mapped[dt.datetime | None] = mapped_column(_TS, nullable=True)
    ocsp_checked_at: Mapped[dt.datetime | None] = mapped_column(_TS, nullable=True)


class Csr(Base):
    """A certificate signing request made for a token key."""

    __tablename__ = "csr"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("token_key.id", ondelete="CASCADE"))
    usage: Mapped[str] = mapped_column(String(8))
    member: Mapped[str] = mapped_column(String(_ID))
    subject: Mapped[str] = mapped_column(Text)
    csr_der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(_TS)


class ServiceDescription(Base):
    """A WSDL or OpenAPI document of a client, listing its services."""

    __tablename__ = "service_description"
    __table_args__ = (UniqueConstraint("client_id", "url"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    type: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_notice: Mapped[str] = mapped_column(Text, default="")
    refreshed_at: Mapped[dt.datetime] = mapped_column(_TS)


class Service(Base):
    """One service (operation) of a service description."""

    __tablename__ = "service"
    __table_args__ = (UniqueConstraint("client_id", "service_code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    description_id: Mapped[int] = mapped_column(
        ForeignKey("service_description.id", ondelete="CASCADE")
    )
    #: Denormalised from the description: a service code is unique per client.
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    service_code: Mapped[str] = mapped_column(String(_CODE))
    service_version: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    url: Mapped[str] = mapped_column(String(2048))
    timeout_seconds: Mapped[float] = mapped_column(Float, default=60.0)
    tls_verify: Mapped[bool] = mapped_column(Boolean, default=True)


class LocalGroup(Base):
    """A client's local group of service consumers."""

    __tablename__ = "local_group"
    __table_args__ = (UniqueConstraint("client_id", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(_CODE))
    description: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(_TS)


class LocalGroupMember(Base):
    __tablename__ = "local_group_member"
    __table_args__ = (UniqueConstraint("group_id", "member"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("local_group.id", ondelete="CASCADE")
    )
    member: Mapped[str] = mapped_column(String(_ID))
    added_at: Mapped[dt.datetime] = mapped_column(_TS)


class AccessRight(Base):
    """A right of a subject to call a client's service (any version)."""

    __tablename__ = "access_right"
    __table_args__ = (UniqueConstraint("client_id", "service_code", "subject"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    service_code: Mapped[str] = mapped_column(String(_CODE))
    subject_type: Mapped[str] = mapped_column(String(16))
    #: Text form: ``SUBSYSTEM:..``, ``MEMBER:..``, ``LOCALGROUP:..`` or
    #: ``GLOBALGROUP:..``.
    subject: Mapped[str] = mapped_column(String(_ID), index=True)
    local_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("local_group.id", ondelete="CASCADE"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(_TS)


class OcspResponse(Base):
    """The newest OCSP response for a certificate (own or a peer's)."""

    __tablename__ = "ocsp_response"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: hex SHA-256 of the DER certificate the response is about.
    cert_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    response_der: Mapped[bytes] = mapped_column(LargeBinary)
    produced_at: Mapped[dt.datetime] = mapped_column(_TS)
    this_update: Mapped[dt.datetime] = mapped_column(_TS)
    next_update: Mapped[dt.datetime | None] = mapped_column(_TS, nullable=True)
    fetched_at: Mapped[dt.datetime] = mapped_column(_TS)


class AdminApiKey(Base):
    """An admin API key bound to roles; only its SHA-256 is stored."""

    __tablename__ = "admin_api_key"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    #: Space-separated role words (``security-officer system-administrator``).
    roles: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(_TS)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(_TS, nullable=True)


class ClientConnection(Base):
    """How a client's information systems must connect (X-Road ``isAuthentication``).

    No row means ``HTTP`` (X-Road: "NOSSL if no value is specified").
    """

    __tablename__ = "client_connection"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), unique=True
    )
    #: A :class:`security_server.client_tls.ConnectionType` value.
    connection_type: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[dt.datetime] = mapped_column(_TS)


class ClientIsCertificate(Base):
    """A TLS certificate of a client's information system (``HTTPS`` type)."""

    __tablename__ = "client_is_certificate"
    __table_args__ = (UniqueConstraint("client_id", "cert_sha256"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    #: hex SHA-256 of ``cert_der``.
    cert_sha256: Mapped[str] = mapped_column(String(64))
    cert_der: Mapped[bytes] = mapped_column(LargeBinary)
    subject: Mapped[str] = mapped_column(Text)
    not_after: Mapped[dt.datetime] = mapped_column(_TS)
    added_at: Mapped[dt.datetime] = mapped_column(_TS)


class CentralRequest(Base):
    """A request this server sent to the central server (onboarding).

    ``kind`` is a :class:`~security_server.states.CentralRequestKind`;
    ``target`` the CSR id, the auth certificate's hex SHA-256 or the client
    identifier. ``requester_token`` is the registration API's secret for a
    CSR request: kept here only, never shown after submission.
    """

    __tablename__ = "central_request"
    __table_args__ = (Index("ix_central_request_kind_target", "kind", "target"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(_ID))
    #: The central server's request number (text, as received).
    central_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    requester_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Where a CSR request was sent (its state is read there).
    central_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    #: The operator's reason when declined.
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(_TS)
    updated_at: Mapped[dt.datetime] = mapped_column(_TS)


class AuditEntry(AuditLogColumns, Base):
    """Who changed what, when; written in the same transaction as the change."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(_BIGID, primary_key=True)
