"""Global configuration: generation time per registry size, and download rate.

1. Generation: a temporary central home (SQLite) is filled with N members of
   2 subsystems each (bulk insert), then ``generate_configuration`` is timed
   (registry read + shared/private params XML + both signed directories),
   best of ``--repeat`` runs, for N = 10, 1 000 and 10 000. The per-member
   ratio shows whether it grows about linearly (target: <= 2 s at 10 000).
2. Downloads: ``jplink central serve`` runs as its own process on free
   loopback ports; ``--clients`` concurrent aiohttp clients GET
   ``/internalconf`` for ``--seconds``; downloads/s, median and p99 latency.

Run: ``.venv/bin/python -m bench.bench_globalconf [--seconds 5] [--clients 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from sqlalchemy import select

from central_server import models as m
from central_server import registry
from central_server.confgen import SourceType, add_signing_key, generate_configuration
from central_server.config import CentralConfig
from central_server.db import open_database
from jplink.identifiers import ClientId
from tests.support.ports import free_port

INSTANCE = "BENCH"


async def populate(config: CentralConfig, members: int) -> None:
    now = dt.datetime.now(dt.UTC)
    db = await open_database(config.db_url)
    try:
        await registry.initialize(
            db, "bench", instance=INSTANCE, member_classes={"COM": "Co"}, now=now
        )
        async with db.transaction() as s:
            cls_id = (await s.execute(select(m.MemberClass.id))).scalar_one()
            rows = [
                m.Member(
                    member_class_id=cls_id,
                    member_code=f"{i:08d}",
                    name=f"Member {i}",
                    created_at=now,
                )
                for i in range(members)
            ]
            s.add_all(rows)
            await s.flush()
            s.add_all(
                m.Subsystem(
                    member_id=row.id, subsystem_code=code, name=None, created_at=now
                )
                for row in rows
                for code in ("a", "b")
            )
        provider = ClientId(INSTANCE, "COM", "00000000", "a")
        await registry.set_management_service_provider(db, "b", provider, now=now)
        for source in SourceType:
            await add_signing_key(db, "bench", config.home, source, now=now)
    finally:
        await db.dispose()


async def time_generation(config: CentralConfig, repeat: int) -> float:
    db = await open_database(config.db_url)
    try:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            await generate_configuration(db, config, now=dt.datetime.now(dt.UTC))
            best = min(best, time.perf_counter() - start)
        return best
    finally:
        await db.dispose()


def config_for(home: Path) -> CentralConfig:
    return CentralConfig(home=home)


async def load(url: str, clients: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    assert resp.status == 200
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies


def bench_downloads(home: Path, clients: int, seconds: float) -> None:
    ports = [free_port() for _ in range(3)]
    (home / "central.toml").write_text(
        f"[admin]\nport = {ports[0]}\n[registration]\nport = {ports[1]}\n"
        f'[publisher]\nhost = "127.0.0.1"\nport = {ports[2]}\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "jplink.cli", "central", "serve", "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{ports[2]}/internalconf"
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", ports[2]), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        lat = asyncio.run(load(url, clients, seconds))
    finally:
        proc.terminate()
        proc.wait(10)
    lat.sort()
    print(
        f"downloads: {len(lat) / seconds:8.0f}/s with {clients} clients, "
        f"median {statistics.median(lat) * 1000:.1f} ms, "
        f"p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        last_home = None
        for n in (int(x) for x in args.sizes.split(",")):
            home = Path(tmp) / f"n{n}"
            home.mkdir(mode=0o700)
            config = config_for(home)
            asyncio.run(populate(config, n))
            seconds = asyncio.run(time_generation(config, args.repeat))
            print(
                f"generate+sign {n:6d} members x 2 subsystems: {seconds:7.3f} s "
                f"({seconds / n * 1e6:8.1f} us/member)"
            )
            last_home = home
        if last_home is not None:
            bench_downloads(last_home, args.clients, args.seconds)


if __name__ == "__main__":
    main()
