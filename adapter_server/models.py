"""The adapter's own store: data sources, registered services, the audit log.

SQLAlchemy 2.0 typed ORM. Parameters and result columns are kept as JSON lists
(their shape is owned by :mod:`adapter_server.portable`, which also writes the
export files), so a new parameter attribute needs no migration.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["AuditRow", "Base", "DataSourceRow", "ServiceRow"]


class Base(DeclarativeBase):
    """Declarative base of the adapter's tables."""


class DataSourceRow(Base):
    """A database connection. ``password_token`` is Fernet ciphertext."""

    __tablename__ = "adapter_datasource"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(Text)
    password_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    pool_size: Mapped[int] = mapped_column(Integer, default=5)
    connect_timeout: Mapped[float] = mapped_column(Float, default=10.0)
    query_timeout: Mapped[float] = mapped_column(Float, default=30.0)


class ServiceRow(Base):
    """A registered SQL service."""

    __tablename__ = "adapter_service"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    version: Mapped[str] = mapped_column(String(30))
    subsystem: Mapped[str] = mapped_column(String(100), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    datasource_id: Mapped[int] = mapped_column(
        ForeignKey("adapter_datasource.id", ondelete="RESTRICT"), index=True
    )
    sql: Mapped[str] = mapped_column(Text)
    parameters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    max_rows: Mapped[int] = mapped_column(Integer, default=1000)
    read_only: Mapped[bool] = mapped_column(Boolean, default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class AuditRow(Base):
    """One admin change: who (``apikey:<id>`` or ``cli``), what, when.

    Written in the same transaction as the change it records, so a change
    that is rolled back leaves no entry and an entry never lacks its change.
    """

    __tablename__ = "adapter_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
