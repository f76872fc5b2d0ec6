"""The audit log shared by the components: who changed what, when.

DESIGN.md §6: "every state change audit-logged". Each component keeps its own
``audit_log`` table on its own declarative base; the columns come from
:class:`AuditLogColumns` and the code that writes and reads the rows from
:class:`AuditTrail`, bound to that table's model class::

    class AuditEntry(AuditLogColumns, Base):
        __tablename__ = "audit_log"

    trail = AuditTrail(AuditEntry)
    trail.record(session, actor="cli:root", action="member.add", ...)

A change and its audit row are added to the same transaction, so they are
committed together or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .db import Database

__all__ = ["AuditLogColumns", "AuditRecord", "AuditTrail", "aware"]


def aware(value: dt.datetime) -> dt.datetime:
    """Give a datetime read from SQLite (which drops the zone) its UTC zone.

    Every timestamp JP-LINK stores is UTC, so a naive value read back can only
    mean UTC.
    """
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class AuditLogColumns:
    """Declarative mixin: the columns of an ``audit_log`` table.

    A model may redeclare ``id`` (the security server uses 64-bit ids on
    PostgreSQL); ``detail`` holds the JSON text of the facts recorded.
    """

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, default="{}")

    if TYPE_CHECKING:  # the declarative base supplies the keyword constructor

        def __init__(self, **columns: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit-log row as read back."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    detail: Mapping[str, Any]


M = TypeVar("M", bound=AuditLogColumns)


class AuditTrail(Generic[M]):
    """Writes and reads the rows of one component's audit table.

    Args:
        model: the component's mapped class built on :class:`AuditLogColumns`.
    """

    def __init__(self, model: type[M]) -> None:
        self._model = model

    def record(
        self,
        session: AsyncSession,
        *,
        actor: str,
        action: str,
        target: str,
        now: dt.datetime,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Add an audit row to the current transaction.

        Args:
            session: the transaction that makes the change being audited.
            actor: who made it (``apikey:<name>``, ``cli:<user>``, ``public``).
            action: a stable verb, e.g. ``member.add``.
            target: what was changed (an identifier's text form, a request id).
            now: when.
            detail: extra JSON-serialisable facts (never secrets).
        """
        session.add(
            self._model(
                at=now,
                actor=actor,
                action=action,
                target=target,
                detail=json.dumps(dict(detail or {}), sort_keys=True, default=str),
            )
        )

    async def list_audit(self, db: Database, *, limit: int = 100) -> list[AuditRecord]:
        """The newest audit rows first.

        Args:
            db: the component's database.
            limit: at most this many rows.

        Returns:
            The rows, newest first.

        Raises:
            StorageError: if the database fails.
        """
        model = self._model
        async with db.transaction() as s:
            rows = (
                await s.execute(select(model).order_by(model.id.desc()).limit(limit))
            ).scalars()
            return [
                AuditRecord(
                    id=r.id,
                    at=aware(r.at),
                    actor=r.actor,
                    action=r.action,
                    target=r.target,
                    detail=json.loads(r.detail),
                )
                for r in rows
            ]
