"""The audit log: who changed what, when.

Every service function that changes the registry calls :func:`record` inside
the same transaction as the change, so a change and its audit row are
committed together or not at all. The code is shared
(:mod:`jplink.storage.audit`); the table is this component's own.
"""

from __future__ import annotations

from jplink.storage.audit import AuditRecord, AuditTrail, aware

from .models import AuditEntry

__all__ = ["AuditRecord", "aware", "list_audit", "record"]

_TRAIL = AuditTrail(AuditEntry)

#: Add an audit row to the current transaction (see :meth:`AuditTrail.record`).
record = _TRAIL.record
#: The newest audit rows first (see :meth:`AuditTrail.list_audit`).
list_audit = _TRAIL.list_audit
