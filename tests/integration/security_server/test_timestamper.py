"""Batch time-stamping of the message log, on SQLite and PostgreSQL.

The TSA is the project's real TSA core (``ca_tsa.tsa``) behind a fake
transport, so the tests control failures and the clock without sleeping; the
tokens stored are checked with ``openssl ts -verify``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import logging
import re
import secrets
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ca_tsa.tsa import TimestampAuthority
from jplink.clients.tsa import FakeTsaClient
from jplink.errors import StorageError, TimestampError, TransportError
from jplink.globalconf import ApprovedTSA
from jplink.identifiers import ClientId, ServiceId
from jplink.security.hashchain import verify_hash_chain
from jplink.security.keys import KeyType
from jplink.storage import Database
from security_server.config import MessageLogMode
from security_server.diagnostics import message_log_diagnostics
from security_server.exchange import FaultPrefix, fault_reply
from security_server.messagelog import MessageLogWriter, log_entry
from security_server.models import MessageLogRecord, MessageTimestamp
from security_server.states import LogDirection, LogSide
from security_server.timestamper import (
    TIMESTAMPER_FAILED,
    TS_DATA_REF_URI,
    TS_HASH_CHAIN_URI,
    Timestamper,
    TimestampingHealth,
)
from tests.conftest import require_tool
from tests.support.messagelog import entry
from tests.support.pki import TestPki, build_test_pki, pem

CLIENT = ClientId("JP-TEST", "COM", "1111").subsystem("client")
SERVICE = ServiceId("JP-TEST", "COM", "2222", "data", "getTrades")
POLICY = "1.3.6.1.4.1.57264.1.1"
DS = "http://www.w3.org/2000/09/xmldsig#"
PERIOD = 4 * 3600


def signature_xml(value: bytes) -> bytes:
    """A minimal signature document with the given SignatureValue."""
    b64 = base64.b64encode(value).decode()
    return (
        f'<ds:Signature xmlns:ds="{DS}"><ds:SignatureValue>{b64}'
        "</ds:SignatureValue></ds:Signature>"
    ).encode()


async def log_records(
    db: Database, n: int, at: dt.datetime, *, prefix: str = "q"
) -> list[bytes]:
    """Log ``n`` records; returns their SignatureValue bytes."""
    writer = MessageLogWriter(db, MessageLogMode.FULL)
    values = [secrets.token_bytes(256) for _ in range(n)]
    try:
        await writer.write(
            [
                entry(f"{prefix}{i}", at, signature_xml=signature_xml(v))
                for i, v in enumerate(values)
            ]
        )
    finally:
        await writer.close()
    return values


@dataclass
class Tsa:
    """The real TSA core with switchable failures, behind a fake transport."""

    pki: TestPki
    authority: TimestampAuthority
    clock: Callable[[], dt.datetime]
    mode: str = "ok"  # ok | down | garbage
    serials: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    hook: Callable[[], Awaitable[None]] | None = None

    async def respond(self, url: str, der: bytes) -> bytes:
        if self.hook is not None:
            await self.hook()
        if self.mode == "down" or url.endswith("/down"):
            raise TransportError("connection refused", url=url)
        if self.mode == "garbage":
            return b"\x30\x03garbage"
        return self.authority.respond(
            der, serial=next(self.serials), gen_time=self.clock()
        )

    def approved(self, url: str = "http://tsa.test/") -> ApprovedTSA:
        return ApprovedTSA("Test TSA", url, self.pki.tsa.cert)


class Clock:
    """A settable clock."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def make_tsa(now: dt.datetime, clock: Callable[[], dt.datetime]) -> Tsa:
    pki = build_test_pki(now - dt.timedelta(days=1), key_type=KeyType.EC)
    authority = TimestampAuthority.create(
        tsa_cert=pki.tsa.cert,
        tsa_key=pki.tsa.key,
        chain=pki.chain,
        policy_oid=POLICY,
        accuracy_ms=0,
    )
    return Tsa(pki, authority, clock)


def make_stamper(
    db: Database,
    tsa: Tsa,
    clock: Callable[[], dt.datetime],
    *,
    tsas: list[ApprovedTSA] | None = None,
    batch_size: int = 10000,
) -> tuple[Timestamper, FakeTsaClient]:
    client = FakeTsaClient(tsa.respond)
    stamper = Timestamper(
        db,
        client=client,
        tsas=lambda now: tsas if tsas is not None else [tsa.approved()],
        batch_size=batch_size,
        health=TimestampingHealth(PERIOD),
        clock=clock,
    )
    return stamper, client


async def records(db: Database) -> list[MessageLogRecord]:
    async with db.transaction() as session:
        return list(
            (
                await session.execute(
                    select(MessageLogRecord).order_by(MessageLogRecord.id)
                )
            ).scalars()
        )


async def stamp_rows(db: Database) -> list[MessageTimestamp]:
    async with db.transaction() as session:
        return list(
            (
                await session.execute(
                    select(MessageTimestamp).order_by(MessageTimestamp.id)
                )
            ).scalars()
        )


def openssl_verify(tmp: Path, token: bytes, data: bytes, pki: TestPki) -> str:
    """``openssl ts -verify`` of a stored token over ``data``; returns stdout."""
    openssl = require_tool("openssl")
    (tmp / "token.tst").write_bytes(token)
    (tmp / "data.bin").write_bytes(data)
    (tmp / "ca.pem").write_bytes(b"".join(pem(c) for c in pki.chain))
    (tmp / "tsa.pem").write_bytes(pem(pki.tsa.cert))
    result = subprocess.run(
        [
            openssl, "ts", "-verify", "-token_in", "-in", str(tmp / "token.tst"),
            "-data", str(tmp / "data.bin"), "-CAfile", str(tmp / "ca.pem"),
            "-untrusted", str(tmp / "tsa.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def test_batch_timestamp_covers_every_record_and_verifies_with_openssl(
    db: Database, now: dt.datetime, tmp_path: Path
) -> None:
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    await log_records(db, 5, now)
    stamper, client = make_stamper(db, tsa, clock)
    assert await stamper.run_once() == 5
    assert len(client.calls) == 1  # one TSA request per batch
    [stamp] = await stamp_rows(db)
    rows = await records(db)
    assert {r.timestamp_id for r in rows} == {stamp.id}
    assert stamp.hash_chain_result is not None
    result = stamp.hash_chain_result.encode()
    for row in rows:
        assert row.timestamp_hash_chain is not None
        # Each record's ts hash chain leads from its signaturehash to the
        # time-stamped result (PROTOCOLS.md §12.2).
        verify_hash_chain(
            result,
            row.timestamp_hash_chain.encode(),
            digests={TS_DATA_REF_URI: base64.b64decode(row.signature_hash)},
            hash_chain_uri=TS_HASH_CHAIN_URI,
        )
    assert "Verification: OK" in openssl_verify(
        tmp_path, stamp.token_der, result, tsa.pki
    )
    # Nothing is left, so the next run asks no TSA.
    assert await stamper.run_once() == 0
    assert len(client.calls) == 1


async def test_each_batch_logs_its_size_and_durations(
    db: Database, now: dt.datetime, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    await log_records(db, 7, now)
    stamper, _ = make_stamper(db, tsa, clock, batch_size=4)
    with caplog.at_level(logging.INFO, logger="security_server.timestamper"):
        assert await stamper.run_once() == 7
    lines = [r.getMessage() for r in caplog.records if "time-stamped" in r.getMessage()]
    stamps = await stamp_rows(db)
    assert len(lines) == len(stamps) == 2
    for line, count, stamp in zip(lines, (4, 3), stamps, strict=True):
        assert line.startswith(f"time-stamped {count} records (token {stamp.id}, ")
        assert re.search(
            r" in \d+ ms: records and hash chains \d+ ms, TSA \d+ ms, links \d+ ms$",
            line,
        ), line


async def test_single_record_stamps_the_signature_value(
    db: Database, now: dt.datetime, tmp_path: Path
) -> None:
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    [value] = await log_records(db, 1, now)
    stamper, _ = make_stamper(db, tsa, clock)
    assert await stamper.run_once() == 1
    [stamp] = await stamp_rows(db)
    [row] = await records(db)
    assert row.timestamp_id == stamp.id and row.timestamp_hash_chain is None
    assert stamp.hash_chain_result is None
    # "The timestamped data = the raw (decoded) bytes of ds:SignatureValue".
    assert "Verification: OK" in openssl_verify(
        tmp_path, stamp.token_der, value, tsa.pki
    )


async def test_bounded_batches_oldest_first(db: Database, now: dt.datetime) -> None:
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    await log_records(db, 7, now)
    stamper, client = make_stamper(db, tsa, clock, batch_size=3)
    stamped = await stamper.stamp_batch()
    assert stamped is not None and len(stamped.record_ids) == 3
    rows = await records(db)
    assert [r.timestamp_id is not None for r in rows] == [True] * 3 + [False] * 4
    # run_once keeps going while full batches are taken: 3 + 1 remain.
    assert await stamper.run_once() == 4
    assert len(client.calls) == 3


async def test_failover_to_the_next_tsa(db: Database, now: dt.datetime) -> None:
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    await log_records(db, 2, now)
    first, second = tsa.approved("http://tsa1.test/down"), tsa.approved()
    stamper, client = make_stamper(db, tsa, clock, tsas=[first, second])
    stamped = await stamper.stamp_batch()
    assert stamped is not None and stamped.tsa_url == second.url
    assert [url for url, _ in client.calls] == [first.url, second.url]
    assert stamper.health.state().failing_since is None


async def test_token_of_an_unapproved_tsa_is_refused(
    db: Database, now: dt.datetime
) -> None:
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    await log_records(db, 2, now)
    # The configuration approves another certificate than the TSA signs with.
    wrong = ApprovedTSA("Other", "http://tsa.test/", tsa.pki.ocsp.cert)
    stamper, _ = make_stamper(db, tsa, clock, tsas=[wrong])
    with pytest.raises(TimestampError) as info:
        await stamper.stamp_batch()
    assert info.value.code == TIMESTAMPER_FAILED
    assert await stamp_rows(db) == []
    assert {r.timestamp_id for r in await records(db)} == {None}


async def test_without_an_approved_tsa_nothing_is_built_or_stored(
    db: Database, now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    await log_records(db, 3, now)
    stamper, client = make_stamper(db, tsa, clock, tsas=[])

    def no_chains(hashes: object) -> object:
        raise AssertionError("hash chains built although no TSA is approved")

    # The backlog grows while no TSA is approved: its hash chains would be
    # built again at every run for nothing.
    monkeypatch.setattr("security_server.timestamper.hash_chain_data", no_chains)
    with pytest.raises(TimestampError, match="No time-stamping authority") as info:
        await stamper.stamp_batch()
    assert info.value.code == TIMESTAMPER_FAILED
    assert client.calls == []
    assert await stamp_rows(db) == []
    assert {r.timestamp_id for r in await records(db)} == {None}


async def test_failure_period_refuses_then_recovers(
    db: Database, now: dt.datetime
) -> None:
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    tsa.mode = "down"
    await log_records(db, 3, now)
    stamper, _ = make_stamper(db, tsa, clock)
    health = stamper.health
    # TSA down for less than the period: exchanges continue.
    clock.at = now + dt.timedelta(hours=1)
    assert await stamper.run_once() == 0
    state = health.state()
    assert state.failing_since == clock.at and state.oldest_pending_at == now
    assert state.last_error is not None and "connection refused" in state.last_error
    health.check(now + dt.timedelta(seconds=PERIOD))
    # Longer than the period: every exchange is refused with X-Road's code.
    with pytest.raises(TimestampError) as info:
        health.check(now + dt.timedelta(seconds=PERIOD + 1))
    assert info.value.code == TIMESTAMPER_FAILED
    reply = fault_reply(info.value, FaultPrefix.CLIENT_PROXY)
    assert reply.fault_code == "Server.ClientProxy.timestamper_failed"
    diag = await message_log_diagnostics(
        db, now=now + dt.timedelta(seconds=PERIOD + 1), health=health
    )
    assert diag.refusing and diag.pending == 3 and diag.oldest_pending_at == now
    # The TSA recovers: the backlog is stamped and exchanges are accepted.
    tsa.mode = "ok"
    clock.at = now + dt.timedelta(seconds=PERIOD + 60)
    assert await stamper.run_once() == 3
    health.check(clock.at)
    diag = await message_log_diagnostics(db, now=clock.at, health=health)
    assert not diag.refusing and diag.pending == 0
    assert diag.last_tsa_url == "http://tsa.test/"


async def test_garbage_answer_is_a_failure(db: Database, now: dt.datetime) -> None:
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    tsa.mode = "garbage"
    await log_records(db, 2, now)
    stamper, _ = make_stamper(db, tsa, clock)
    assert await stamper.run_once() == 0
    assert await stamp_rows(db) == []
    error = stamper.health.state().last_error
    assert error is not None and error.startswith(TIMESTAMPER_FAILED)
    with pytest.raises(TimestampError):
        stamper.health.check(now + dt.timedelta(seconds=PERIOD + 1))


async def test_period_zero_disables_the_check(now: dt.datetime) -> None:
    health = TimestampingHealth(0)
    health.failed(now, "down", now - dt.timedelta(days=30))
    health.check(now)


async def test_concurrently_stamped_record_rolls_the_batch_back(
    db: Database, now: dt.datetime
) -> None:
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    await log_records(db, 3, now)
    stamper, _ = make_stamper(db, tsa, clock)
    other, _ = make_stamper(db, tsa, clock, batch_size=1)

    async def race() -> None:
        # While our TSA request is in flight another time-stamper stamps the
        # oldest record.
        tsa.hook = None
        assert await other.stamp_batch() is not None

    tsa.hook = race
    with pytest.raises(StorageError) as info:
        await stamper.stamp_batch()
    assert info.value.code == "TimestampConflict"
    stamps = await stamp_rows(db)
    assert len(stamps) == 1  # only the other's token was kept
    rows = await records(db)
    assert [r.timestamp_id for r in rows] == [stamps[0].id, None, None]
    assert await stamper.run_once() == 2


async def test_timestamp_immediately(
    db: Database, now: dt.datetime, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    stamper, _ = make_stamper(db, tsa, clock)
    writer = MessageLogWriter(
        db, MessageLogMode.FULL, timestamper=stamper, stamp_immediately=True
    )
    entry = log_entry(
        query_id="now",
        client=CLIENT,
        service=SERVICE,
        direction=LogDirection.REQUEST,
        side=LogSide.CLIENT_PROXY,
        soap=b"<m/>",
        signature_xml=signature_xml(b"v" * 64),
        hash_chain=None,
        hash_chain_result=None,
        signer_cert_der=b"cert",
        ocsp_ders=[],
        mode=MessageLogMode.FULL,
        x_request_id=None,
        now=now,
    )
    try:
        with caplog.at_level(logging.DEBUG, logger="security_server.timestamper"):
            await writer.write([entry])
        # Stamping every exchange's records would write a line per exchange:
        # in this mode the batch lines are DEBUG.
        levels = [r.levelno for r in caplog.records if "time-stamped" in r.getMessage()]
        assert levels == [logging.DEBUG]
        # Time-stamped before write() returned (before the acknowledgement).
        [row] = await records(db)
        assert row.timestamp_id is not None
        tsa.mode = "down"
        with pytest.raises(TimestampError) as info:
            await writer.write([entry])
        assert info.value.code == TIMESTAMPER_FAILED
    finally:
        await writer.close()
    rows = await records(db)
    assert len(rows) == 2 and rows[1].timestamp_id is None  # logged, stamped later


async def test_stored_token_matches_its_rows(db: Database, now: dt.datetime) -> None:
    """The token's imprint is SHA-512 of the stored hash-chain result."""
    clock = Clock(now)
    tsa = make_tsa(now, clock)
    await log_records(db, 4, now)
    stamper, client = make_stamper(db, tsa, clock)
    stamped = await stamper.stamp_batch()
    assert stamped is not None and stamped.hash_chain_result is not None
    digest = hashlib.sha512(stamped.hash_chain_result).digest()
    assert stamped.token.imprint.digest == digest
    async with db.transaction() as session:
        count = await session.scalar(select(func.count(MessageTimestamp.id)))
    assert count == 1 and len(client.calls) == 1
