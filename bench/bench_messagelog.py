"""Benchmark the message log: records written and time-stamped per second.

Run with ``.venv/bin/python -m bench.bench_messagelog [--rate 4000]
[--seconds 20] [--db-url URL] [--batch 16]``. Records carry signature
documents of a real one's size, shared by ``--batch`` exchanges in a row as
batch signing shares them (1: every message signed alone). It creates a
temporary CA home and starts the real TSA (``jplink ca serve``) on a free
loopback port, opens a migrated security-server database (SQLite by
default), and then measures, in the same run:

1. write capacity: records/s the batched writer commits when flooded by
   concurrent exchanges (4 records each: both sides' request and response);
2. stamp capacity: records/s the time-stamper clears from a backlog (one TSA
   request per batch);
3. steady state: exchanges offered at ``--rate`` records/s for ``--seconds``
   while the time-stamper runs every second; the backlog (records without a
   time-stamp) is sampled each second and must stay flat.

Ratios against the target rate are printed; a sample of tokens is verified.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import os
import secrets
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from bench.bench_tsa import JPLINK, REPO, wait_for_port
from ca_tsa.home import init_ca_home, load_ca_material
from jplink.clients.tsa import AiohttpTsaClient
from jplink.globalconf import ApprovedTSA
from jplink.identifiers import ClientId, ServiceId
from jplink.security.tsp import verify_timestamp_token
from jplink.storage import Database
from security_server.config import MessageLogMode
from security_server.db import open_database
from security_server.messagelog import LogEntry, MessageLogWriter, log_entry
from security_server.models import MessageLogRecord, MessageTimestamp
from security_server.states import LogDirection, LogSide
from security_server.timestamper import Timestamper, TimestampingHealth
from tests.support.ports import free_port

CLIENT = ClientId("JP-BENCH", "COM", "1111").subsystem("client")
SERVICE = ServiceId("JP-BENCH", "COM", "2222", "data", "getTrades")
DS = "http://www.w3.org/2000/09/xmldsig#"
SOAP = b"<SOAP-ENV:Envelope>" + b"x" * 1500 + b"</SOAP-ENV:Envelope>"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


#: Size of a real signature document (the exchange benchmark's log: about
#: 6.9 KB with the signer's certificates and OCSP responses).
SIGNATURE_BYTES = 6900
_signatures: dict[tuple[int, LogSide, LogDirection], bytes] = {}


def _signature(batch: int, side: LogSide, direction: LogDirection) -> bytes:
    """One signature document per batch, side and direction (as batch signing)."""
    key = (batch, side, direction)
    if key not in _signatures:
        value = base64.b64encode(secrets.token_bytes(256)).decode()
        filler = "<ds:Object/>" * ((SIGNATURE_BYTES - 450) // 12)
        _signatures[key] = (
            f'<ds:Signature xmlns:ds="{DS}">{filler}'
            f"<ds:SignatureValue>{value}</ds:SignatureValue></ds:Signature>"
        ).encode()
    return _signatures[key]


def exchange_entries(n: int, batch: int = 1) -> list[LogEntry]:
    """The 4 records of one exchange (both sides, request and response).

    ``batch`` exchanges in a row share their signature documents, as
    messages signed in one batch do (1: every message signed alone).
    """
    out = []
    for side in (LogSide.CLIENT_PROXY, LogSide.SERVER_PROXY):
        for direction in (LogDirection.REQUEST, LogDirection.RESPONSE):
            sig = _signature(n // batch, side, direction)
            out.append(
                log_entry(
                    query_id=f"q{n}",
                    client=CLIENT,
                    service=SERVICE,
                    direction=direction,
                    side=side,
                    soap=SOAP,
                    signature_xml=sig,
                    hash_chain=None,
                    hash_chain_result=None,
                    signer_cert_der=b"cert",
                    ocsp_ders=[b"ocsp"],
                    mode=MessageLogMode.FULL,
                    x_request_id=None,
                    now=_now(),
                )
            )
    return out


async def pending(db: Database) -> int:
    async with db.transaction() as session:
        count = await session.scalar(
            select(func.count(MessageLogRecord.id)).where(
                MessageLogRecord.timestamp_id.is_(None)
            )
        )
    return int(count or 0)


async def flood(
    writer: MessageLogWriter, exchanges: int, concurrency: int, batch: int
) -> float:
    """Seconds to write ``exchanges`` x 4 records from concurrent exchanges."""
    prepared = [exchange_entries(i, batch) for i in range(exchanges)]
    queue = iter(prepared)
    started = time.perf_counter()

    async def worker() -> None:
        for entries in queue:
            await writer.write(entries)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def steady(
    writer: MessageLogWriter,
    stamper: Timestamper,
    db: Database,
    rate: int,
    seconds: int,
    batch: int,
) -> list[int]:
    """Offer ``rate`` records/s for ``seconds``; the backlog sampled per second."""
    task = asyncio.create_task(stamper.run_periodically(interval=lambda: 1.0))
    samples = []
    tick = 0.05
    per_tick = max(1, round(rate * tick / 4))
    pool = [exchange_entries(i, batch) for i in range(per_tick * 20)]
    started = time.perf_counter()
    try:
        for step in range(int(seconds / tick)):
            base = step % 20 * per_tick
            await asyncio.gather(
                *(writer.write(pool[base + i]) for i in range(per_tick))
            )
            if step % int(1 / tick) == 0:
                samples.append(await pending(db))
            delay = started + (step + 1) * tick - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        samples.append(await pending(db))
    finally:
        task.cancel()
    return samples


async def run(args: argparse.Namespace, tsa: ApprovedTSA, db: Database) -> None:
    writer = MessageLogWriter(db, MessageLogMode.FULL)
    async with aiohttp.ClientSession() as session:
        client = AiohttpTsaClient(session)
        calls = 0

        class Counting:
            async def fetch(self, url: str, der: bytes) -> bytes:
                nonlocal calls
                calls += 1
                return await client.fetch(url, der)

        stamper = Timestamper(
            db,
            client=Counting(),
            tsas=lambda now: [tsa],
            batch_size=10000,
            health=TimestampingHealth(14400),
            clock=_now,
        )
        exchanges = args.flood_records // 4
        print(f"flooding {exchanges * 4} records ...", flush=True)
        seconds = await flood(writer, exchanges, 64, args.batch)
        write_rate = exchanges * 4 / seconds
        print("time-stamping the backlog ...", flush=True)
        started = time.perf_counter()
        stamped = await stamper.run_once()
        stamp_rate = stamped / (time.perf_counter() - started)
        flood_calls = calls
        print(f"offering {args.rate} records/s for {args.seconds} s ...", flush=True)
        samples = await steady(writer, stamper, db, args.rate, args.seconds, args.batch)
        await writer.close()
        async with db.transaction() as s:
            sample = (
                await s.execute(
                    select(
                        MessageTimestamp.token_der, MessageTimestamp.hash_chain_result
                    )
                    .where(MessageTimestamp.hash_chain_result.is_not(None))
                    .order_by(MessageTimestamp.id.desc())
                    .limit(5)
                )
            ).all()
    for token, result in sample:  # over the ts hash-chain result, by the TSA
        verify_timestamp_token(
            token, data=str(result).encode(), trusted_tsa_certs=[tsa.cert]
        )
    rate = args.rate
    print(f"message log ({args.db}, {os.cpu_count()} CPUs, target {rate} records/s, "
          f"{args.batch} exchanges per signature)")  # fmt: skip
    w, st = write_rate, stamp_rate
    print(f"  write capacity:  {w:8.0f} records/s  ({w / rate:.2f}x target)")
    print(f"  stamp capacity:  {st:8.0f} records/s  ({st / rate:.2f}x target; "
          f"{stamped} records, {flood_calls} TSA requests)")  # fmt: skip
    print(f"  steady {rate}/s for {args.seconds} s, backlog each second:")
    print("    " + " ".join(str(s) for s in samples))
    first_half = max(samples[: len(samples) // 2] or [0])
    second_half = max(samples[len(samples) // 2 :] or [0])
    flat = second_half <= max(first_half * 1.5, rate * 2.5)
    print(f"  backlog max first/second half: {first_half} / {second_half} "
          f"-> {'flat' if flat else 'GROWING'}")  # fmt: skip
    print(f"  TSA requests in total: {calls}; verified sample: {len(sample)} tokens")
    if not flat or write_rate < rate or stamp_rate < rate:
        print(f"WARNING: the log does not keep up with {rate} records/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=4000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--flood-records", type=int, default=40000)
    parser.add_argument("--db-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument(
        "--batch",
        type=int,
        default=16,
        help="exchanges that share their signature documents, as in a signing "
        "batch (default 16; 1: every message signed alone, as at one client)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mlog-") as tmp:
        home = Path(tmp) / "ca"
        tsa_port = free_port()
        config = init_ca_home(
            home,
            key_type="ec",
            api_port=free_port(),
            tsa_port=tsa_port,
            now=_now() - dt.timedelta(days=1),
        )
        material = load_ca_material(config)
        proc = subprocess.Popen(
            [*JPLINK, "ca", "serve", "--home", str(home), "--workers", "1"],
            start_new_session=True,
            cwd=REPO,
        )
        try:
            wait_for_port(tsa_port, proc)
            tsa = ApprovedTSA(
                "bench", f"http://127.0.0.1:{tsa_port}/", material.tsa_cert
            )
            url = args.db_url or f"sqlite:///{Path(tmp) / 'ss.db'}"
            args.db = url.split(":", 1)[0]

            async def go() -> None:
                db = await open_database(url)
                try:
                    await run(args, tsa, db)
                finally:
                    await db.dispose()

            asyncio.run(go())
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
