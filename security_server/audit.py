"""The audit log: who changed what, when.

Every service function that changes the server configuration calls :func:`record` inside
the same transaction as the change, so a change and its audit row are
committed together or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.storage import Database

from .models import AuditEntry

__all__ = ["AuditRecord", "aware", "list_audit", "record"]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit-log row as read back."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    detail: Mapping[str, Any]


def aware(value: dt.datetime) -> dt.datetime:
    """Give a datetime read from SQLite (which drops the zone) its UTC zone."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def record(
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
        AuditEntry(
            at=now,
            actor=actor,
            action=action,
            target=target,
            detail=json.dumps(dict(detail or {}), sort_keys=True, default=str),
        )
    )


async def list_audit(db: Database, *, limit: int = 100) -> list[AuditRecord]:
    """The newest audit rows first.

    Args:
        db: the security server's database.
        limit: at most this many rows.

    Returns:
        The rows, newest first.

    Raises:
        StorageError: if the database fails.
    """
    async with db.transaction() as s:
        rows = (
            await s.execute(
                select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
            )
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
