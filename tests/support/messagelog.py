"""Message-log test helpers."""

from __future__ import annotations

from security_server.messagelog import LogEntry


def unstorable(entry: LogEntry) -> LogEntry:
    """``entry``, but its row breaks a NOT NULL column: its INSERT fails."""
    bad_row = entry.row()
    bad_row["signer_cert_sha256"] = None

    class Unstorable(LogEntry):
        def row(self) -> dict[str, object]:
            return dict(bad_row)

    return Unstorable(**{f: getattr(entry, f) for f in LogEntry.__dataclass_fields__})
