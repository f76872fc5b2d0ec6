"""The audit log of admin changes (DESIGN.md §6: "every state change audit-logged").

Every change to data sources, services and API keys, from the admin API or
the CLI, writes one :class:`~adapter_server.models.AuditRow` naming who made
it (``apikey:<key id>`` or ``cli``), what was done, to what, and when. The
row is added in the same transaction as the change: a change that fails or is
rolled back leaves no entry, and a committed change always has one. Entries
never hold a password or a key.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jplink.errors import InvalidRequest
from jplink.storage import Database
from jplink.storage.audit import AuditRecord, aware

from .models import AuditRow

__all__ = ["CLI_ACTOR", "AuditEntry", "AuditLog", "api_key_actor", "utcnow"]

#: The actor recorded for changes made with ``jplink adapter ...``.
CLI_ACTOR = "cli"
#: Most entries one :meth:`AuditLog.entries` call returns.
MAX_ENTRIES = 1000
_ACTOR = re.compile(r"cli|system|apikey:[0-9a-f]{16}\Z")

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC (the registry's default clock)."""
    return dt.datetime.now(dt.UTC)


def api_key_actor(key_id: str) -> str:
    """How the audit log names a change made with admin API key ``key_id``."""
    return f"apikey:{key_id}"


@dataclass(frozen=True, slots=True)
class AuditEntry(AuditRecord):
    """One recorded change (the shared audit record, with its JSON form)."""

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data (``at`` in ISO 8601)."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "detail": dict(self.detail),
        }


class AuditLog:
    """Writes entries inside a caller's transaction and reads them back.

    Args:
        db: the adapter's store.
        actor: who the changes are made by (``cli``, ``system`` or
            ``apikey:<key id>``).
        clock: the time source.

    Raises:
        ValueError: an actor of another form (programmer misuse).
    """

    def __init__(self, db: Database, actor: str, clock: Clock = utcnow) -> None:
        if not _ACTOR.match(actor):
            raise ValueError(f"not an audit actor: {actor!r}")
        self._db = db
        self.actor = actor
        self._clock = clock

    def record(
        self,
        session: AsyncSession,
        action: str,
        target: str,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Add an entry to ``session``'s transaction (committed with it).

        Args:
            session: the transaction making the change.
            action: what was done (``service.register``, ``apikey.revoke`` ...).
            target: what it was done to (a service code, a data-source name ...).
            detail: facts worth keeping (never secrets).
        """
        session.add(self._row(action, target, detail))

    def _row(
        self, action: str, target: str, detail: Mapping[str, Any] | None
    ) -> AuditRow:
        return AuditRow(
            at=self._clock(),
            actor=self.actor,
            action=action,
            target=target[:200],
            detail=dict(detail or {}),
        )

    @asynccontextmanager
    async def recording(
        self, action: str, target: str, detail: Mapping[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Record a change made outside the store (the API key file).

        The entry is written and flushed first, the body makes the change,
        and the transaction commits after it: if the store cannot take the
        entry, the change is never made; if the change fails, the entry is
        rolled back.

        Yields:
            A dict the body may fill with facts known only after the change
            (a new key's id); they are added to the entry's detail.

        Raises:
            StorageError: the store failed (the change was not made).
        """
        async with self._db.transaction() as s:
            row = self._row(action, target, detail)
            s.add(row)
            await s.flush()
            learned: dict[str, Any] = {}
            yield learned
            if learned:
                row.detail = {**row.detail, **learned}

    async def entries(
        self, *, limit: int = 100, offset: int = 0
    ) -> tuple[AuditEntry, ...]:
        """Entries, newest first.

        Args:
            limit: at most this many (1 to 1000).
            offset: skip this many of the newest.

        Raises:
            InvalidRequest: ``limit`` or ``offset`` out of range.
            StorageError: the store failed.
        """
        if not 1 <= limit <= MAX_ENTRIES or offset < 0:
            raise InvalidRequest(
                f"limit must be 1..{MAX_ENTRIES} and offset at least 0",
                code="InvalidQuery",
            )
        query = (
            select(AuditRow).order_by(AuditRow.id.desc()).limit(limit).offset(offset)
        )
        async with self._db.transaction() as s:
            rows = await s.scalars(query)
            return tuple(
                AuditEntry(r.id, aware(r.at), r.actor, r.action, r.target, r.detail)
                for r in rows
            )
