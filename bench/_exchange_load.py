"""The exchange benchmark's load: the stub service, closed- and open-loop
clients, and what the machine and each process spent (from ``/proc``)."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import uvloop
from aiohttp import web


def wait_for(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = process.stderr.read()[-3000:] if process.stderr else b""
            text = tail.decode(errors="replace")
            raise SystemExit(f"process for port {port} exited early:\n{text}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def run_stub(port: int) -> None:
    """The provider's service: answers every getTrades request (own process).

    The answer to a request body is computed once (the load generator sends
    the same request every time) and then replayed, so that the stub costs
    what a trivial service costs and the direct baseline measures the HTTP
    path, not XML processing in the stub.
    """
    from tests.integration.security_server.pair import answer_trades

    answers: dict[bytes, bytes] = {}

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        data = answers.get(body)
        if data is None:
            data = answer_trades(body, request.headers.get("Content-Type", ""))
            if len(answers) < 1024:
                answers[body] = data
        return web.Response(body=data, content_type="text/xml", charset="utf-8")

    app = web.Application()
    app.router.add_post("/soap", handle)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    uvloop.run(main())


async def load(
    url: str,
    body: bytes,
    clients: int,
    duration: float,
    on_start: Callable[[], None] | None = None,
) -> tuple[int, list[float], int]:
    """Run ``clients`` workers for ``duration`` seconds after a warm-up.

    ``on_start`` is called when the measurement starts (after the warm-up):
    the caller reads the servers' CPU time there.
    """
    latencies: list[float] = []
    errors = 0
    deadline = 0.0
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

        async def once() -> None:
            async with http.post(
                url, data=body, headers={"Content-Type": "text/xml; charset=UTF-8"}
            ) as resp:
                await resp.read()

        # Warm up (caches), then open the pools at the measured concurrency:
        # every connection (ours and A's to B) exists before the clock starts,
        # so the figures are the steady state, not the pools growing.
        for _ in range(3):
            await once()
        await asyncio.gather(*(once() for _ in range(clients)))
        if on_start is not None:
            on_start()
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return int(len(latencies) / elapsed), latencies, errors


async def load_open(
    url: str, body: bytes, rate: float, duration: float, connections: int = 64
) -> tuple[int, list[float], int]:
    """Offer ``rate`` requests/s (Poisson arrivals) over ``connections``.

    Open loop: a request is started at its arrival time whether or not the
    earlier ones were answered (as independent information systems do), and
    its latency counts from that arrival, waiting for a free connection
    included, so a server that falls behind shows it in the percentiles
    (no coordinated omission). In a closed loop of N clients the median
    latency is N / throughput by Little's law, so its p99 says little;
    this is the measure for "p99 at a given load".
    """
    latencies: list[float] = []
    errors = 0
    rng = random.Random(5500)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(arrival: float) -> None:
            nonlocal errors
            try:
                async with http.post(
                    url, data=body, headers={"Content-Type": "text/xml; charset=UTF-8"}
                ) as resp:
                    await resp.read()
                    errors += resp.status != 200
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - arrival)

        # Open the connections first, as the closed-loop cases do.
        await asyncio.gather(*(one(time.perf_counter()) for _ in range(connections)))
        latencies.clear()
        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        arrival = started
        while arrival < started + duration:
            arrival += rng.expovariate(rate)
            delay = arrival - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(arrival)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return int(len(latencies) / elapsed), latencies, errors


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process and its children
    (the proxy workers of ``[exchange] workers``) have used so far."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]
