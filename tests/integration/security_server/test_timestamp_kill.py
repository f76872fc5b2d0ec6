"""kill -9 of a time-stamper in the middle of a batch: no record lost, none twice.

A child process (this module run with ``python -m``) time-stamps the log
against a real TSA over HTTP. It is killed with SIGKILL (1) while its TSA
request is in flight, and (2) inside the storing transaction, right after the
UPDATE of the records and before the COMMIT (an engine event, or on SQLite
the time-stamper's own connection's trace callback, pauses it there and says
so). Afterwards a fresh time-stamper finishes the work, and every
record has exactly the one time-stamp it got, with a hash chain that verifies.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509

from ca_tsa.tsa import TimestampAuthority
from jplink.clients.tsa import TSA_REPLY_TYPE
from jplink.globalconf import ApprovedTSA
from jplink.security.hashchain import verify_hash_chain
from jplink.security.keys import KeyType
from jplink.storage import Database
from security_server.timestamper import (
    TS_DATA_REF_URI,
    TS_HASH_CHAIN_URI,
    Timestamper,
    TimestampingHealth,
)
from tests.support.pki import build_test_pki, pem

from .test_timestamper import POLICY, log_records, records, stamp_rows

REPO = Path(__file__).resolve().parents[3]
CHILD = "tests.integration.security_server.test_timestamp_kill"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _start_child(
    db_url: str, tsa_url: str, cert: Path, batch: int, pause_on: int
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", CHILD,
            db_url, tsa_url, str(cert), str(batch), str(pause_on),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


async def _wait_line(
    proc: subprocess.Popen[str], wanted: str, timeout: float = 60
) -> None:
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(
            loop.run_in_executor(None, proc.stdout.readline),
            deadline - time.monotonic(),
        )
        if not line:
            raise AssertionError(
                f"child exited: {proc.stderr.read() if proc.stderr else ''}"
            )
        if line.strip() == wanted:
            return
    raise AssertionError(f"child never printed {wanted!r}")


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


async def test_sigkill_mid_batch_loses_nothing_and_stamps_nothing_twice(
    db: Database, db_url: str, tmp_path: Path, aiohttp_server: Any
) -> None:
    start = _utcnow()
    pki = build_test_pki(start - dt.timedelta(days=1), key_type=KeyType.EC)
    authority = TimestampAuthority.create(
        tsa_cert=pki.tsa.cert, tsa_key=pki.tsa.key, chain=pki.chain,
        policy_oid=POLICY, accuracy_ms=0,
    )  # fmt: skip
    serials = itertools.count(1)
    slow = asyncio.Event()
    arrived = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        arrived.set()
        if slow.is_set():
            await asyncio.sleep(120)
        der = authority.respond(body, serial=next(serials), gen_time=_utcnow())
        return web.Response(body=der, content_type=TSA_REPLY_TYPE)

    app = web.Application()
    app.router.add_post("/", handle)
    server = await aiohttp_server(app)
    tsa_url = str(server.make_url("/"))
    cert_file = tmp_path / "tsa.pem"
    cert_file.write_bytes(pem(pki.tsa.cert))
    await log_records(db, 12, start)

    # (1) Killed while its TSA request is in flight: nothing is stored.
    slow.set()
    child = _start_child(db_url, tsa_url, cert_file, 5, 0)
    try:
        await asyncio.wait_for(arrived.wait(), 60)
    finally:
        _kill(child)
    assert await stamp_rows(db) == []
    assert {r.timestamp_id for r in await records(db)} == {None}

    # (2) Killed inside the second batch's transaction (after its UPDATE,
    # before its COMMIT): the first batch stays, the second is rolled back.
    slow.clear()
    child = _start_child(db_url, tsa_url, cert_file, 5, 2)
    try:
        await _wait_line(child, "paused")
    finally:
        _kill(child)
    [first] = await stamp_rows(db)
    rows = await records(db)
    assert [r.timestamp_id for r in rows] == [first.id] * 5 + [None] * 7

    # A new time-stamper finishes; nothing was lost and nothing re-stamped.
    stamper = Timestamper(
        db,
        client=_HttpClient(tsa_url),
        tsas=lambda now: [ApprovedTSA("t", tsa_url, pki.tsa.cert)],
        batch_size=5,
        health=TimestampingHealth(0),
        clock=_utcnow,
    )
    assert await stamper.run_once() == 7
    stamps = {s.id: s for s in await stamp_rows(db)}
    rows = await records(db)
    assert len(rows) == 12 and [r.timestamp_id for r in rows[:5]] == [first.id] * 5
    assert all(r.timestamp_id in stamps for r in rows)
    # Every stored token covers records (none orphaned by a half-done batch).
    assert {r.timestamp_id for r in rows} == set(stamps)
    for row in rows:
        stamp = stamps[row.timestamp_id]  # type: ignore[index]
        if stamp.hash_chain_result is None:  # a single-record batch
            continue
        verify_hash_chain(
            stamp.hash_chain_result.encode(),
            (row.timestamp_hash_chain or "").encode(),
            digests={TS_DATA_REF_URI: base64.b64decode(row.signature_hash)},
            hash_chain_uri=TS_HASH_CHAIN_URI,
        )


class _HttpClient:
    """The real aiohttp client with its own session per call (test helper)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def fetch(self, url: str, request_der: bytes) -> bytes:
        import aiohttp

        from jplink.clients.tsa import AiohttpTsaClient

        async with aiohttp.ClientSession() as session:
            return await AiohttpTsaClient(session).fetch(url, request_der)


def _child_main(argv: list[str]) -> None:
    """The child: time-stamp once; with ``pause_on`` N, hang after the N-th UPDATE."""
    import aiohttp
    from sqlalchemy import event
    from sqlalchemy.sql import Update

    from jplink.clients.tsa import AiohttpTsaClient
    from security_server import _timestamper_sqlite as stamp_store
    from security_server.db import open_database

    db_url, tsa_url, cert_path, batch, pause_on = argv

    async def main() -> None:
        db = await open_database(db_url)
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        updates = itertools.count(1)

        @event.listens_for(db.engine.sync_engine, "after_execute")
        def pause(conn: Any, clause: Any, *args: Any) -> None:
            ours = isinstance(clause, Update) and clause.table.name == "message_log"
            if ours and next(updates) == int(pause_on):
                print("paused", flush=True)
                time.sleep(120)  # inside the open transaction

        # On a SQLite file the time-stamper stores through its own sqlite3
        # connection (security_server._timestamper_sqlite), not the engine:
        # there the pause is at the N-th COMMIT, which the trace callback
        # sees before it runs (the UPDATE is done, the transaction open).
        plain_connect = stamp_store.connect_sqlite
        commits = itertools.count(1)

        def traced(path: str, *, waits: bool) -> sqlite3.Connection:
            conn = plain_connect(path, waits=waits)

            def trace(sql: str) -> None:
                if sql.strip().upper() == "COMMIT" and next(commits) == int(pause_on):
                    print("paused", flush=True)
                    time.sleep(120)

            conn.set_trace_callback(trace)
            return conn

        stamp_store.connect_sqlite = traced  # type: ignore[assignment]

        async with aiohttp.ClientSession() as session:
            stamper = Timestamper(
                db,
                client=AiohttpTsaClient(session),
                tsas=lambda now: [ApprovedTSA("t", tsa_url, cert)],
                batch_size=int(batch),
                health=TimestampingHealth(0),
                clock=_utcnow,
            )
            print("ready", flush=True)
            await stamper.run_once(raise_errors=True)
            print("done", flush=True)

    asyncio.run(main())


if __name__ == "__main__":
    _child_main(sys.argv[1:])
