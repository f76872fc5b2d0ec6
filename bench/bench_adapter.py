"""Adapter server throughput: SOAP and REST calls vs the same query run directly.

One run, one machine: a temporary adapter home with a 10 000-row SQLite table
(indexed primary key) and two services, ``itemById`` (a simple indexed SELECT)
and ``firstItems`` (a 1 000-row result). ``jplink adapter serve --workers W``
runs as real processes; the load generator is a lean keep-alive HTTP/1.1
client on uvloop (one connection per concurrent client, pre-built requests,
the row id varying per call), so the numbers measure the server, not the
client library. The baseline runs the same SELECT directly through
SQLAlchemy's async engine (aiosqlite) in this process, with the same
concurrency, and the overhead ratio is direct calls/s over adapter calls/s.

Reported per case: calls/s, median and p99 latency. Targets (issue 4, on a
2-core machine): >= 2 500 SOAP calls/s with 32 concurrent clients, median
<= 1 ms at concurrency 1.

Run: ``.venv/bin/python -m bench.bench_adapter [--duration 5] [--workers 2]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.ports import free_port

JPLINK = [sys.executable, "-m", "jplink.cli"]
ROWS = 10_000
NS = "http://jplink.example/adapter/BENCH"

SERVICES = {
    "itemById": {
        "code": "itemById",
        "subsystem": "BENCH",
        "datasource": "bench",
        "title": "One item by id",
        "sql": "SELECT id, name, price FROM item WHERE id = :id",
        "max_rows": 10,
        "parameters": [{"name": "id", "type": "integer", "sample": "1"}],
        "columns": [
            {"name": "id", "type": "integer"},
            {"name": "name", "type": "string"},
            {"name": "price", "type": "decimal"},
        ],
    },
    "firstItems": {
        "code": "firstItems",
        "subsystem": "BENCH",
        "datasource": "bench",
        "title": "The first 1000 items",
        "sql": "SELECT id, name, price FROM item WHERE id <= :upTo ORDER BY id",
        "max_rows": 1000,
        "parameters": [{"name": "upTo", "type": "integer", "sample": "1000"}],
        "columns": [
            {"name": "id", "type": "integer"},
            {"name": "name", "type": "string"},
            {"name": "price", "type": "decimal"},
        ],
    },
}

SOAP = """<?xml version="1.0" encoding="UTF-8"?>
<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:x="http://x-road.eu/xsd/xroad.xsd" xmlns:i="http://x-road.eu/xsd/identifiers"
 xmlns:b="{ns}"><e:Header>
<x:client i:objectType="SUBSYSTEM"><i:xRoadInstance>JP</i:xRoadInstance>
<i:memberClass>COM</i:memberClass><i:memberCode>1111</i:memberCode>
<i:subsystemCode>CLIENT</i:subsystemCode></x:client>
<x:service i:objectType="SERVICE"><i:xRoadInstance>JP</i:xRoadInstance>
<i:memberClass>COM</i:memberClass><i:memberCode>2222</i:memberCode>
<i:subsystemCode>BENCH</i:subsystemCode><i:serviceCode>{code}</i:serviceCode>
<i:serviceVersion>v1</i:serviceVersion></x:service>
<x:id>bench-{n}</x:id><x:protocolVersion>4.0</x:protocolVersion></e:Header>
<e:Body><b:{code}><b:{param}>{value}</b:{param}></b:{code}></e:Body></e:Envelope>"""


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the adapter exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the adapter did not start")


def jplink(*args: str) -> str:
    done = subprocess.run(
        [*JPLINK, "adapter", *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"jplink adapter {args[0]} failed: {done.stderr}")
    return done.stdout


def make_home(root: Path, port: int, pool_size: int) -> Path:
    home = root / "adapter"
    # Long refresh: the bench measures calls, not catalogue reloads.
    jplink("init", "--home", str(home), "--port", str(port))
    with (home / "adapter.toml").open("a") as fh:
        fh.write("catalog_refresh_seconds = 3600.0\n")
    db = root / "bench.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price)")
        conn.executemany(
            "INSERT INTO item VALUES (?, ?, ?)",
            ((i, f"品目 {i}", i * 1.25) for i in range(1, ROWS + 1)),
        )
    conn.close()
    jplink("datasource", "add", "--home", str(home), "bench", f"sqlite:///{db}",
           "--pool-size", str(pool_size))  # fmt: skip
    for name, service in SERVICES.items():
        path = root / f"{name}.json"
        path.write_text(json.dumps(service))
        jplink("service", "register", "--home", str(home), str(path))
    return home


def soap_request(code: str, param: str, value: int, n: int) -> bytes:
    body = SOAP.format(ns=NS, code=code, param=param, value=value, n=n).encode()
    head = (
        "POST /soap HTTP/1.1\r\nHost: bench\r\n"
        "Content-Type: text/xml; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def rest_request(code: str, param: str, value: int, n: int) -> bytes:
    body = json.dumps({param: value}).encode()
    head = (
        f"POST /rest/{code} HTTP/1.1\r\nHost: bench\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return status
    start = lower.index(b"content-length:") + 15
    length = int(lower[start : lower.index(b"\r\n", start)])
    await reader.readexactly(length)
    return status


async def check_streamed(port: int, request: bytes) -> str:
    """How the 1 000-row answer travels (chunked = streamed, not one body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    writer.close()
    if b"transfer-encoding: chunked" in head:
        return "streamed (Transfer-Encoding: chunked)"
    return "sent as one body (NOT streamed)"


async def drive(
    port: int, make: Callable[[int], bytes], clients: int, duration: float
) -> list[float]:
    """Keep ``clients`` connections busy for ``duration`` s; return latencies."""
    # A pool of distinct pre-built requests (the id varies per call).
    requests = [make(i) for i in range(1, 501)]
    latencies: list[float] = []
    stop = time.perf_counter() + duration

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        try:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                writer.write(requests[i % len(requests)])
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    raise SystemExit(f"HTTP {status} from the adapter")
                i += 7
        finally:
            writer.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies


async def direct(db: Path, clients: int, duration: float) -> list[float]:
    """The same SELECT straight through SQLAlchemy (aiosqlite)."""
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{db}", pool_size=8, max_overflow=clients
    )
    query = text("SELECT id, name, price FROM item WHERE id = :id")
    latencies: list[float] = []
    stop = time.perf_counter() + duration

    async def client(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop:
            started = time.perf_counter()
            async with engine.connect() as conn:
                (await conn.execute(query, {"id": i % ROWS + 1})).fetchall()
            latencies.append(time.perf_counter() - started)
            i += 7

    await asyncio.gather(*(client(n) for n in range(clients)))
    await engine.dispose()
    return latencies


async def direct_threaded(db: Path, clients: int, duration: float) -> list[float]:
    """The same SELECT through a plain (pysqlite) engine, one thread hop per
    call: the path the adapter itself takes for SQLite files."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine

    engine = create_engine(
        f"sqlite:///{db}", pool_size=8, max_overflow=0,
        connect_args={"check_same_thread": False},
    )  # fmt: skip
    threads = ThreadPoolExecutor(max_workers=8)
    query = text("SELECT id, name, price FROM item WHERE id = :id")
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    stop = time.perf_counter() + duration

    def one(i: int) -> None:
        with engine.connect() as conn:
            conn.execute(query, {"id": i % ROWS + 1}).fetchall()

    async def client(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await loop.run_in_executor(threads, one, i)
            latencies.append(time.perf_counter() - started)
            i += 7

    await asyncio.gather(*(client(n) for n in range(clients)))
    threads.shutdown()
    engine.dispose()
    return latencies


def report(label: str, latencies: list[float], duration: float) -> float:
    rate = len(latencies) / duration
    ordered = sorted(latencies)
    p99 = ordered[int(len(ordered) * 0.99) - 1] if ordered else 0.0
    median = statistics.median(ordered) * 1e3
    print(
        f"{label:<42} {rate:9.0f} calls/s   median {median:6.2f}"
        f" ms   p99 {p99 * 1e3:6.2f} ms"
    )
    return rate


async def run_all(port: int, db: Path, duration: float) -> None:
    one = str(SERVICES["itemById"]["code"])
    rates: dict[tuple[str, int], float] = {}
    soap = lambda n: soap_request(one, "id", n % ROWS + 1, n)  # noqa: E731
    rest = lambda n: rest_request(one, "id", n % ROWS + 1, n)  # noqa: E731
    await drive(port, soap, 4, 1.0)  # warm up every worker's caches
    for clients in (1, 32):
        for name, make in (("SOAP", soap), ("REST", rest)):
            lat = await drive(port, make, clients, duration)
            label = f"{name} itemById, {clients} client(s)"
            rates[(name, clients)] = report(label, lat, duration)
        lat = await direct(db, clients, duration)
        rates[("direct", clients)] = report(
            f"direct SQLAlchemy aiosqlite, {clients} client(s)", lat, duration
        )
        lat = await direct_threaded(db, clients, duration)
        rates[("threaded", clients)] = report(
            f"direct SQLAlchemy pysqlite+thread, {clients} cl.", lat, duration
        )
    for clients in (1, 32):
        for base_name in ("direct", "threaded"):
            base = rates[(base_name, clients)]
            for name in ("SOAP", "REST"):
                print(
                    f"overhead ratio {name} vs {base_name:<8} {clients:>2} client(s): "
                    f"direct/adapter calls/s = {base / rates[(name, clients)]:.2f}"
                )
    big = str(SERVICES["firstItems"]["code"])
    streamed = await check_streamed(port, soap_request(big, "upTo", 1000, 0))
    print(f"1 000-row SOAP response: {streamed}")
    makers: tuple[tuple[str, Callable[[str, str, int, int], bytes]], ...] = (
        ("SOAP", soap_request),
        ("REST", rest_request),
    )
    for name, maker in makers:

        def make(n: int, m: Callable[[str, str, int, int], bytes] = maker) -> bytes:
            return m(big, "upTo", 1000, n)

        lat = await drive(port, make, 1, duration)
        report(f"{name} 1 000-row result, 1 client", lat, duration)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--pool-size", type=int, default=4, help="the data source's pool size"
    )
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="jplink-bench-") as tmp:
        root = Path(tmp)
        port = free_port()
        home = make_home(root, port, args.pool_size)
        server = subprocess.Popen(
            [*JPLINK, "adapter", "serve", "--home", str(home),
             "--workers", str(args.workers)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(port, server)
            print(
                f"adapter: {args.workers} worker(s), data-source pool "
                  f"{args.pool_size}, {os.cpu_count()} CPU(s), load average "
                  f"{os.getloadavg()[0]:.1f}, {args.duration:g} s per case"
            )  # fmt: skip
            asyncio.run(run_all(port, root / "bench.db", args.duration))
        finally:
            server.terminate()
            server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
