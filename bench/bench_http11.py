"""The exchange's own HTTP client and server vs aiohttp's, in the same run.

Clients: a server process (aiohttp, uvloop) answers every POST with an 8 KiB
body; the benchmark process POSTs 8 KiB bodies to it, one request at a time
and then 64 at once, first with an ``aiohttp.ClientSession`` (as the
security server did before) and then with
:class:`jplink.clients.http11.Http11Pool` (what the client proxy uses
towards peers and the server proxy towards services), both over kept-alive
connections on uvloop. Reported: the client process's CPU time per request.

Servers: the same load (with ``Http11Pool``) against an aiohttp server and
against :class:`jplink.http11_server.Http11Server` (what the proxies listen
with), each in its own process; reported: the server process's CPU time per
request (from ``/proc``).

Each figure is the best of three alternating rounds (the least disturbed),
with the requests/s and the CPU ratio to aiohttp.

Run: ``.venv/bin/python -m bench.bench_http11 [--number 3000]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import uvloop
from aiohttp import web

from jplink.clients.http11 import Http11Pool
from jplink.http11_server import Http11Server, HttpReply, HttpRequest, ServerLimits
from tests.support.ports import free_port

BODY = b"<x>" + b"y" * 8186 + b"</x>"
LIMIT = 1 << 20


def _serve(port: int) -> None:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=BODY, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/", answer)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _serve_http11(port: int) -> None:
    async def answer(request: HttpRequest) -> HttpReply:
        return HttpReply(200, BODY, (("Content-Type", "text/xml"),))

    async def run() -> None:
        server = Http11Server(answer, ServerLimits(max_body=LIMIT))
        await server.listen("127.0.0.1", port)
        await asyncio.Event().wait()

    uvloop.run(run())


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(
    call: Callable[[], Awaitable[bytes]],
    number: int,
    concurrency: int,
    cpu_of: Callable[[], float] = time.process_time,
) -> tuple[float, float]:
    """(CPU seconds per request of ``cpu_of``'s process, requests per second)."""
    await asyncio.gather(*(call() for _ in range(concurrency * 4)))  # warm up

    async def worker(count: int) -> None:
        for _ in range(count):
            assert len(await call()) == len(BODY)

    cpu, wall = cpu_of(), time.perf_counter()
    await asyncio.gather(*(worker(number // concurrency) for _ in range(concurrency)))
    done = (number // concurrency) * concurrency
    return (cpu_of() - cpu) / done, done / (time.perf_counter() - wall)


async def _aiohttp(url: str, number: int, concurrency: int) -> tuple[float, float]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call() -> bytes:
            async with session.post(
                url, data=BODY, headers={"Content-Type": "text/xml"}
            ) as resp:
                return await resp.read()

        return await _measure(call, number, concurrency)


async def _pool(
    url: str, number: int, concurrency: int, server_pid: int | None = None
) -> tuple[float, float]:
    """With ``server_pid``: the CPU per request of that process."""
    pool = Http11Pool()

    async def call() -> bytes:
        resp = await pool.post(
            url, BODY, {"Content-Type": "text/xml"}, timeout=30, limit=LIMIT
        )
        return resp.body

    cpu_of = time.process_time
    if server_pid is not None:
        pid = server_pid
        cpu_of = lambda: _process_cpu(pid)  # noqa: E731
    try:
        return await _measure(call, number, concurrency, cpu_of)
    finally:
        pool.close()


def _start(kind: str, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_http11", f"--{kind}", str(port)]
    )
    url = f"http://127.0.0.1:{port}/"
    for _ in range(100):
        try:
            uvloop.run(_pool(url, 8, 1))
            return process
        except Exception:  # not listening yet
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the {kind} server did not start")


def _table(
    title: str,
    runs: dict[str, Callable[[int], tuple[float, float]]],
) -> None:
    print(f"{'clients':>8}{title:>10}{'cpu us/req':>12}{'req/s':>9}{'ratio':>7}")
    for concurrency in (1, 64):
        best: dict[str, tuple[float, float]] = {}
        for _ in range(3):
            for name, run in runs.items():
                cpu, rate = run(concurrency)
                old = best.get(name)
                best[name] = (
                    (min(cpu, old[0]), max(rate, old[1])) if old else (cpu, rate)
                )
        first = next(iter(best.values()))[0]
        for name, (cpu, rate) in best.items():
            ratio = f"{cpu / first:.2f}x"
            print(f"{concurrency:>8}{name:>10}{1e6 * cpu:>12.0f}{rate:>9.0f}{ratio:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=3000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-http11", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return
    if args.serve_http11:
        _serve_http11(args.serve_http11)
        return
    n = args.number
    ports = {"serve": free_port(), "serve-http11": free_port()}
    servers = {kind: _start(kind, port) for kind, port in ports.items()}
    aio = f"http://127.0.0.1:{ports['serve']}/"
    lean = f"http://127.0.0.1:{ports['serve-http11']}/"
    try:
        _table(
            "client",
            {
                "aiohttp": lambda c: uvloop.run(_aiohttp(aio, n, c)),
                "http11": lambda c: uvloop.run(_pool(aio, n, c)),
            },
        )
        pids = {kind: p.pid for kind, p in servers.items()}
        _table(
            "server",
            {
                "aiohttp": lambda c: uvloop.run(_pool(aio, n, c, pids["serve"])),
                "http11": lambda c: uvloop.run(_pool(lean, n, c, pids["serve-http11"])),
            },
        )
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
