"""Exchanges through two security servers vs calling the service directly.

Everything runs on this machine in the same run: a CA/OCSP app (idle during
the load), a stub SOAP service (its own process), security servers A and B
(``jplink ss serve`` processes, SQLite, message log mode ``full`` on both
sides), and one load generator (aiohttp, uvloop) with N concurrent clients,
each POSTing a getTrades request and waiting for the answer, for a fixed
duration per case. For each concurrency (1, 8, 64) it measures the service
directly and then through A -> B -> service, with batch signing on, then
with batch signing off (the servers are restarted with the other setting).

Reported per case: exchanges/s, median and p99 latency, and for the proxied
cases the added median latency and the throughput ratio to the direct call.

Run: ``.venv/bin/python -m bench.bench_exchange [--duration 5] [--profile]``
(``--profile`` runs server A under pyinstrument and prints where its time
goes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from aiohttp import web
from aiohttp.test_utils import TestServer

JPLINK = [sys.executable, "-m", "jplink.cli"]
PIN = "correct horse 1"


def _wait_for(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"process for port {port} exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def run_stub(port: int) -> None:
    """The provider's service: answers every getTrades request (own process)."""
    from tests.integration.security_server.pair import StubService

    stub = StubService()

    async def main() -> None:
        runner = web.AppRunner(stub.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    uvloop.run(main())


async def _load(
    url: str, body: bytes, clients: int, duration: float
) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with http.post(
                    url, data=body, headers={"Content-Type": "text/xml; charset=UTF-8"}
                ) as resp:
                    await resp.read()
                    errors += resp.status != 200
                latencies.append(time.perf_counter() - start)

        # Warm up (connections, caches), then measure.
        for _ in range(3):
            async with http.post(
                url, data=body, headers={"Content-Type": "text/xml; charset=UTF-8"}
            ) as resp:
                await resp.read()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return int(len(latencies) / elapsed), latencies, errors


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.asynccontextmanager
async def _servers(
    nodes: list[Any], profile_dir: Path | None
) -> AsyncIterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for node in nodes:
            pin_file = node.config.home / "pin"
            pin_file.write_text(PIN + "\n")
            pin_file.chmod(0o600)
            cmd = [*JPLINK, "ss", "serve", "--home", str(node.config.home),
                   "--pin-file", str(pin_file)]  # fmt: skip
            if profile_dir is not None and node.name == "ss-a":
                out = profile_dir / "ss-a.txt"
                cmd = [sys.executable, "-m", "pyinstrument", "-o", str(out),
                       "-m", "jplink.cli", *cmd[3:]]  # fmt: skip
            procs.append(
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            )
        for node, proc in zip(nodes, procs, strict=True):
            await asyncio.to_thread(_wait_for, node.config.server_proxy.port, proc)
            await asyncio.to_thread(_wait_for, node.config.client_proxy.http_port, proc)
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(2)  # SIGINT: a clean shutdown (pyinstrument writes)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _set_batch(node: Any, on: bool) -> None:
    path = node.config.home / "ss.toml"
    text = path.read_text()
    key = "batch_signing = "
    lines = [ln for ln in text.splitlines() if not ln.startswith(key)]
    at = lines.index("[exchange]") + 1
    lines.insert(at, f"{key}{'true' if on else 'false'}")
    path.write_text("\n".join(lines) + "\n")


async def main(args: argparse.Namespace) -> None:
    from tests.integration.security_server import pair as pair_mod

    work = Path(tempfile.mkdtemp(prefix="bench-exchange-"))
    stub_port = pair_mod.free_port()
    stub = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_exchange", "--stub", str(stub_port)],
        stderr=subprocess.PIPE,
    )
    try:
        await asyncio.to_thread(_wait_for, stub_port, stub)
        stub_url = f"http://127.0.0.1:{stub_port}/soap"
        async with aiohttp.ClientSession() as http:

            async def serve_app(app: web.Application) -> TestServer:
                server = TestServer(app, host="127.0.0.1")
                await server.start_server()
                return server

            ca = await pair_mod.start_ca(work, serve_app, http)
            exchange = ("serverconf_cache_seconds = 5", "peer_cache_seconds = 60")
            a, b, _, _ = await pair_mod.prepare_pair(
                work, ca, stub_url, exchange=exchange
            )
            request = pair_mod.trades_request(a.subsystem, b.subsystem)
            direct: dict[int, tuple[int, list[float], int]] = {}
            print(
                f"{'case':<28}{'clients':>8}{'exch/s':>9}{'median ms':>11}"
                f"{'p99 ms':>9}{'errors':>8}{'added ms':>10}{'ratio':>7}"
            )
            for batch in (True, False):
                for node in (a, b):
                    _set_batch(node, batch)
                profile = work if args.profile and batch else None
                async with _servers([a, b], profile):
                    for clients in args.clients:
                        if clients not in direct:
                            direct[clients] = await _load(
                                stub_url, request, clients, args.duration
                            )
                            _report("direct", clients, direct[clients], None)
                        result = await _load(
                            a.client_proxy_url, request, clients, args.duration
                        )
                        name = f"via A,B batch={'on' if batch else 'off'}"
                        _report(name, clients, result, direct[clients])
                if profile is not None:
                    print((work / "ss-a.txt").read_text()[:6000])
            await ca.server.close()
    finally:
        stub.terminate()
        stub.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _report(
    name: str,
    clients: int,
    result: tuple[int, list[float], int],
    direct: tuple[int, list[float], int] | None,
) -> None:
    rate, lat, errors = result
    median = statistics.median(lat) * 1000
    added = ratio = ""
    if direct is not None:
        added = f"{median - statistics.median(direct[1]) * 1000:.2f}"
        ratio = f"{rate / max(1, direct[0]):.2f}"
    print(f"{name:<28}{clients:>8}{rate:>9}{median:>11.2f}{_ms(lat, 0.99):>9.2f}"
          f"{errors:>8}{added:>10}{ratio:>7}", flush=True)  # fmt: skip


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--stub", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = _args()
    if arguments.stub:
        run_stub(arguments.stub)
    else:
        os.environ.setdefault("PYTHONWARNINGS", "ignore")
        uvloop.run(main(arguments))
