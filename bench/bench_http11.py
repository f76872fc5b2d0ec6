"""The exchange's outbound HTTP client vs aiohttp's, in the same run.

A server process (aiohttp, uvloop) answers every POST with an 8 KiB body; the
benchmark process POSTs 8 KiB bodies to it, one request at a time and then
64 at once, first with an ``aiohttp.ClientSession`` (as the security server
did before) and then with :class:`jplink.clients.http11.Http11Pool` (what the
client proxy uses towards peers and the server proxy towards services), both
over kept-alive connections on uvloop. Reported: the client process's CPU
time per request, the requests/s and the CPU ratio. Three rounds each,
alternating; the best round of each is printed (the least disturbed).

Run: ``.venv/bin/python -m bench.bench_http11 [--number 3000]``
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import uvloop
from aiohttp import web

from jplink.clients.http11 import Http11Pool
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


async def _measure(
    call: Callable[[], Awaitable[bytes]], number: int, concurrency: int
) -> tuple[float, float]:
    """(CPU seconds per request, requests per second)."""
    await asyncio.gather(*(call() for _ in range(concurrency * 4)))  # warm up

    async def worker(count: int) -> None:
        for _ in range(count):
            assert len(await call()) == len(BODY)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(number // concurrency) for _ in range(concurrency)))
    done = (number // concurrency) * concurrency
    return (time.process_time() - cpu) / done, done / (time.perf_counter() - wall)


async def _aiohttp(url: str, number: int, concurrency: int) -> tuple[float, float]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call() -> bytes:
            async with session.post(
                url, data=BODY, headers={"Content-Type": "text/xml"}
            ) as resp:
                return await resp.read()

        return await _measure(call, number, concurrency)


async def _pool(url: str, number: int, concurrency: int) -> tuple[float, float]:
    pool = Http11Pool()

    async def call() -> bytes:
        resp = await pool.post(
            url, BODY, {"Content-Type": "text/xml"}, timeout=30, limit=LIMIT
        )
        return resp.body

    try:
        return await _measure(call, number, concurrency)
    finally:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=3000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_http11", "--serve", str(port)]
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                uvloop.run(_pool(url, 8, 1))
                break
            except Exception:  # not listening yet
                time.sleep(0.1)
        print(f"{'clients':>8}{'client':>10}{'cpu us/req':>12}{'req/s':>9}{'ratio':>7}")
        for concurrency in (1, 64):
            best: dict[str, tuple[float, float]] = {}
            for _ in range(3):
                for name, run in (("aiohttp", _aiohttp), ("http11", _pool)):
                    cpu, rate = uvloop.run(run(url, args.number, concurrency))
                    old = best.get(name)
                    best[name] = (
                        (min(cpu, old[0]), max(rate, old[1])) if old else (cpu, rate)
                    )
            for name, (cpu, rate) in best.items():
                ratio = f"{cpu / best['aiohttp'][0]:.2f}x"
                cells = f"{1e6 * cpu:>12.0f}{rate:>9.0f}{ratio:>7}"
                print(f"{concurrency:>8}{name:>10}{cells}")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
