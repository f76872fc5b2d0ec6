"""Message-log test helpers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jplink.identifiers import ClientId, ServiceId
from security_server.config import MessageLogMode
from security_server.messagelog import LogEntry, log_entry
from security_server.states import LogDirection, LogSide

CLIENT = ClientId("JP-TEST", "COM", "1111").subsystem("client")
SERVICE = ServiceId("JP-TEST", "COM", "2222", "data", "getTrades")


def entry(query_id: str, now: dt.datetime, **fields: Any) -> LogEntry:
    """A record of ``CLIENT`` calling ``SERVICE``; ``fields`` override
    :func:`security_server.messagelog.log_entry`'s arguments."""
    args: dict[str, Any] = {
        "client": CLIENT,
        "service": SERVICE,
        "direction": LogDirection.REQUEST,
        "side": LogSide.CLIENT_PROXY,
        "soap": b"<m/>",
        "signature_xml": b"<sig/>",
        "hash_chain": None,
        "hash_chain_result": None,
        "signer_cert_der": b"cert",
        "ocsp_ders": [],
        "mode": MessageLogMode.FULL,
        "x_request_id": None,
    }
    args.update(fields)
    return log_entry(query_id=query_id, now=now, **args)


def unstorable(entry: LogEntry) -> LogEntry:
    """``entry``, but its row breaks a NOT NULL column: its INSERT fails."""
    bad_row = entry.row()
    bad_row["signer_cert_sha256"] = None

    class Unstorable(LogEntry):
        def row(self) -> dict[str, object]:
            return dict(bad_row)

    return Unstorable(**{f: getattr(entry, f) for f in LogEntry.__dataclass_fields__})
