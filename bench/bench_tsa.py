"""Benchmark the TSA: `jplink ca serve --workers 2` under an aiohttp load.

Run with ``.venv/bin/python -m bench.bench_tsa [--seconds 10] [--clients 32]``.
It creates a temporary CA home, starts the server on free loopback ports,
drives POSTs of pre-built requests from ``--clients`` concurrent connections
for a fixed time, and prints time-stamps/s with median and p99 latency. For
comparison it times ``openssl ts -reply`` per token with the same TSA key
(one process per token, as a CLI TSA would run) and prints the ratio. A
sample of responses is verified with ``jplink.security.tsp`` after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from ca_tsa.home import init_ca_home, load_ca_material
from ca_tsa.server import install_uvloop
from jplink.security.tsp import (
    TimestampRequest,
    build_timestamp_request,
    verify_timestamp_response,
)
from tests.support.ports import free_port

#: The same CLI an operator runs; ``-m`` keeps the repository importable.
JPLINK = [sys.executable, "-m", "jplink.cli"]
REPO = Path(__file__).resolve().parents[1]
GRANTED = b"\x30\x03\x02\x01\x00"  # PKIStatusInfo { status granted }


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


async def load(
    url: str, requests: list[TimestampRequest], seconds: float, clients: int
) -> tuple[list[float], list[tuple[TimestampRequest, bytes]], int]:
    latencies: list[float] = []
    samples: list[tuple[TimestampRequest, bytes]] = []
    failures = 0
    headers = {"Content-Type": "application/timestamp-query"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm up every connection first.
        await asyncio.gather(
            *(
                session.post(url, data=r.der, headers=headers)
                for r in requests[:clients]
            )
        )
        stop = time.perf_counter() + seconds

        async def client(index: int) -> None:
            nonlocal failures
            i = index
            while time.perf_counter() < stop:
                req = requests[i % len(requests)]
                i += clients
                start = time.perf_counter()
                async with session.post(url, data=req.der, headers=headers) as resp:
                    body = await resp.read()
                latencies.append(time.perf_counter() - start)
                if resp.status != 200 or GRANTED not in body[:16]:
                    failures += 1
                elif len(samples) < 50 and i % 97 == 0:
                    samples.append((req, body))

        await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies, samples, failures


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time of every live process in a process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


def time_openssl(home: Path, req: TimestampRequest, tokens: int) -> float:
    """Seconds per token for `openssl ts -reply` with the same TSA key."""
    work = home / "openssl"
    work.mkdir()
    (work / "serial").write_text("01\n")
    (work / "tsa.cnf").write_text(
        "[ tsa ]\ndefault_tsa = t\n[ t ]\n"
        f"serial = {work}/serial\nsigner_cert = {home}/certs/tsa.pem\n"
        f"signer_key = {home}/private/tsa.key\nsigner_digest = sha256\n"
        "default_policy = 1.3.6.1.4.1.57264.1.1\ndigests = sha256, sha384, sha512\n"
        "accuracy = secs:1\ness_cert_id_alg = sha256\n"
    )
    (work / "req.tsq").write_bytes(req.der)
    cmd = ["openssl", "ts", "-reply", "-config", str(work / "tsa.cnf"),
           "-queryfile", str(work / "req.tsq"),
           "-out", str(work / "resp.tsr")]  # fmt: skip
    start = time.perf_counter()
    for _ in range(tokens):
        subprocess.run(cmd, check=True, capture_output=True)
    return (time.perf_counter() - start) / tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--key-type", choices=["rsa", "ec"], default="rsa")
    parser.add_argument("--openssl-tokens", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-tsa-") as tmp:
        home = Path(tmp) / "ca"
        tsa_port = free_port()
        config = init_ca_home(
            home,
            key_type=args.key_type,
            api_port=free_port(),
            tsa_port=tsa_port,
            now=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
        )
        material = load_ca_material(config)
        proc = subprocess.Popen(
            [
                *JPLINK,
                "ca",
                "serve",
                "--home",
                str(home),
                "--workers",
                str(args.workers),
            ],
            start_new_session=True,
            cwd=REPO,
        )
        try:
            wait_for_port(tsa_port, proc)
            requests = [
                build_timestamp_request(f"record {i}".encode(), nonce=i + 1)
                for i in range(1024)
            ]
            url = f"http://127.0.0.1:{tsa_port}/"
            started = time.perf_counter()
            install_uvloop()  # the load generator needs its CPU share too
            server_cpu = group_cpu_seconds(proc.pid)
            client_cpu = time.process_time()
            latencies, samples, failures = asyncio.run(
                load(url, requests, args.seconds, args.clients)
            )
            elapsed = time.perf_counter() - started
            server_cpu = group_cpu_seconds(proc.pid) - server_cpu
            client_cpu = time.process_time() - client_cpu
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)

        for req, body in samples:
            verify_timestamp_response(
                body, request=req, trusted_tsa_certs=[material.root_cert]
            )
        ours = (len(latencies) - failures) / elapsed
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        per_openssl = time_openssl(home, requests[0], args.openssl_tokens)
        print(f"TSA ({args.key_type}, {args.workers} workers, {args.clients} clients, "
              f"{args.seconds:.0f} s, {os.cpu_count()} CPUs)")  # fmt: skip
        granted = len(latencies) - failures
        print(f"  time-stamps:      {granted} granted, {failures} failed")
        print(f"  throughput:       {ours:.0f} time-stamps/s")
        print(f"  latency median:   {statistics.median(latencies) * 1000:.2f} ms")
        print(f"  latency p99:      {p99 * 1000:.2f} ms")
        cpu_per_token = server_cpu / max(len(latencies), 1)
        cores = os.cpu_count() or 1
        print(
            f"  server CPU:       {cpu_per_token * 1e3:.3f} ms/token -> "
            f"{cores} cores could do {cores / cpu_per_token:.0f}/s"
        )
        client_ms = client_cpu / max(len(latencies), 1) * 1e3
        print(f"  load generator:   {client_ms:.3f} ms CPU/request")
        load1 = os.getloadavg()[0]
        print(f"  machine load:     {load1:.2f} (1-min load average after the run)")
        print(f"  verified sample:  {len(samples)} responses OK")
        print(f"openssl ts -reply:  {per_openssl * 1000:.2f} ms/token "
              f"({1 / per_openssl:.0f} tokens/s, one process per token)")  # fmt: skip
        print(f"ratio ours/openssl: {ours * per_openssl:.1f}x")
        if ours < 1000:
            print("WARNING: below the 1000 time-stamps/s target")


if __name__ == "__main__":
    main()
