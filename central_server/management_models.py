"""The stored management request (PR-MSERV): one row per accepted request.

The row's primary key is the ``requestId`` answered to the security server
(PR-MSERV: "unique identifier of the request that is stored in the Central
Server database"). Only requests that verified are stored; the raw SOAP bytes
are kept as evidence of what was signed.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base

__all__ = ["ManagementRequestRow"]

_CODE = 255
_TS = DateTime(timezone=True)


class ManagementRequestRow(Base):
    """A management request and its decision."""

    __tablename__ = "management_request"
    #: The same X-Road message (sender + message id) twice is a replay.
    __table_args__ = (UniqueConstraint("sender", "message_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    server: Mapped[str] = mapped_column(String(1100))
    client: Mapped[str | None] = mapped_column(String(1100), nullable=True)
    address: Mapped[str | None] = mapped_column(String(255), nullable=True)
    auth_cert_der: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: base64 SHA-256 of ``auth_cert_der`` (shared-params ``authCertHash``).
    auth_cert_hash: Mapped[str | None] = mapped_column(
        String(64), nullable=True, index=True
    )
    subsystem_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The SOAP header client and message id.
    sender: Mapped[str] = mapped_column(String(1100))
    message_id: Mapped[str] = mapped_column(String(_CODE))
    #: The member whose signing key signed, or None for unsigned types.
    signer: Mapped[str | None] = mapped_column(String(1100), nullable=True)
    #: While pending, the operation and its object; NULL once decided. Unique,
    #: so the same change cannot be pending twice even under a race.
    pending_key: Mapped[str | None] = mapped_column(
        String(1300), nullable=True, unique=True
    )
    auto_approved: Mapped[bool] = mapped_column(Boolean, default=False)
    soap: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(_TS)
    decided_at: Mapped[dt.datetime | None] = mapped_column(_TS, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    decline_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
