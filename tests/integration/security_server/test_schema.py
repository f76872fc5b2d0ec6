"""The message-log and OCSP-cache tables, as issue 6 will use them."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import inspect, select

from jplink.storage import Database
from security_server.models import (
    MessageLogRecord,
    MessageSignature,
    MessageTimestamp,
    OcspResponse,
)
from security_server.states import LogDirection, LogSide


async def test_message_log_round_trip_and_indexes(
    db: Database, now: dt.datetime
) -> None:
    async with db.transaction() as s:
        document = MessageSignature(
            signature_hash="aGFzaA==", signature_xml="<ds:Signature/>"
        )
        s.add(document)
        await s.flush()
        for i, direction in enumerate(LogDirection):
            s.add(
                MessageLogRecord(
                    query_id="q-1",
                    client="SUBSYSTEM:JP-TEST/COM/1111/client",
                    service="SERVICE:JP-TEST/COM/2222/data/getTrades/v1",
                    direction=direction.value,
                    side=LogSide.CLIENT_PROXY.value,
                    logged_at=now + dt.timedelta(seconds=i),
                    message=b"<soap/>" if direction is LogDirection.REQUEST else None,
                    signature_hash="aGFzaA==",
                    signature_id=document.id,
                    signer_cert_sha256="00" * 32,
                    ocsp_responses=json.dumps(["AAEC"]),
                )
            )
    async with db.transaction() as s:
        stamp = MessageTimestamp(
            token_der=b"\x30\x00",
            hash_chain_result="<result/>",
            gen_time=now,
            tsa_url="http://tsa",
            created_at=now,
        )
        s.add(stamp)
        await s.flush()
        first = await s.scalar(select(MessageLogRecord).order_by(MessageLogRecord.id))
        assert first is not None
        first.timestamp_id = stamp.id
        s.add(
            OcspResponse(
                cert_sha256="ab" * 32,
                response_der=b"\x30\x00",
                produced_at=now,
                this_update=now,
                next_update=None,
                fetched_at=now,
            )
        )
    async with db.transaction() as s:
        pending = (
            await s.execute(
                select(MessageLogRecord.direction, MessageLogRecord.message)
                .where(MessageLogRecord.timestamp_id.is_(None))
                .order_by(MessageLogRecord.id)
            )
        ).all()
        assert pending == [("response", None)]
        rows = (
            (
                await s.execute(
                    select(MessageLogRecord).where(MessageLogRecord.query_id == "q-1")
                )
            )
            .scalars()
            .all()
        )
        assert len(rows) == 2 and all(not r.archived for r in rows)

    def indexes(conn):  # type: ignore[no-untyped-def]
        return {i["name"] for i in inspect(conn).get_indexes("message_log")}

    async with db.engine.connect() as conn:
        names = await conn.run_sync(indexes)
    assert {
        "ix_message_log_query_id",
        "ix_message_log_logged_at",
        "ix_message_log_untimestamped",
    } <= names
