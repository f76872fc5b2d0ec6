"""Exchanges through two security servers vs calling the service directly.

Everything runs on this machine in the same run: a CA/OCSP app and its TSA
(approved in the global configuration), a stub SOAP service (its own
process), security servers A and B (``jplink ss serve`` processes, SQLite),
and one load generator (aiohttp, uvloop) with N concurrent clients, each
POSTing a getTrades request and waiting for the answer, for a fixed duration
per case. For each concurrency
(1, 8, 64) it measures the service directly and then through
A -> B -> service, for each batch-signing setting (on, off) and each
message-log mode on both servers (``full``, then ``none``); the servers are
restarted for every setting. Both servers time-stamp their logs every 2 s
(``--stamp-every``): a window of a few seconds then bears the time-stamper's
work as a long run does; at the usual 60 s interval it would mostly miss it.
After each setting it prints how many of the logged records were stamped.

Reported per case: exchanges/s, median and p99 latency, and for the proxied
cases the added median latency, the throughput ratio to the direct call and
the CPU time spent per exchange (``cpu ms A/B/stub/load``: each security
server, the stub service, and this process: the load generator, and the
CA and TSA, idle but for a time-stamp per server every interval; from
``/proc``: unlike rates and latencies it hardly depends on what else the
machine runs at the same time), how busy the machine's cores were
during the case (``busy``, all processes, from ``/proc/stat``: 100 % means
the two cores were the limit), and the rate that CPU time allows
(``cpu max/s``: the machine's cores divided by the CPU per exchange of all
four processes together; a run at ``busy`` 100 % reaches it, so it says
what idle time costs and how far the CPU alone is from a target). Each case
first warms up and opens every connection at its concurrency (N requests
at once), then starts the clock and the CPU count: the figures are the
steady state, not the pools growing. At the end, the cost of logging
(issue #6): per batch setting and concurrency, throughput with logging
``full`` divided by throughput with ``none``, both measured in this run.

Run: ``.venv/bin/python -m bench.bench_exchange [--duration 5] [--profile]``
(``--profile`` samples both servers with py-spy during the first setting and
prints where their time goes, ``--gil`` counting only samples that hold the
GIL; ``--batch on`` runs only the batch-signing
case; ``--log full`` only full logging; ``--clients 1 64`` picks the
concurrencies; ``--rates 200 300`` adds open-loop cases: that many requests
per second arriving independently over 64 connections, latency counted from
each arrival; the p99 at a load is read there, since in the closed loop the
median is clients / throughput by Little's law).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
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
from sqlalchemy import make_url

from bench._exchange_load import (
    cpu_seconds,
    load,
    load_open,
    machine_busy,
    ms,
    run_stub,
    wait_for,
)
from bench._exchange_profile import start_py_spy, summarise_profile

JPLINK = [sys.executable, "-m", "jplink.cli"]
PIN = "correct horse 1"


@contextlib.asynccontextmanager
async def _servers(
    nodes: list[Any], profile_dir: Path | None, gil: bool = False
) -> AsyncIterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    spies: list[subprocess.Popen[bytes]] = []
    try:
        for node in nodes:
            pin_file = node.config.home / "pin"
            pin_file.write_text(PIN + "\n")
            pin_file.chmod(0o600)
            cmd = [*JPLINK, "ss", "serve", "--home", str(node.config.home),
                   "--pin-file", str(pin_file)]  # fmt: skip
            # The log goes to a file (--keep keeps it): a pipe nobody reads
            # would stall the server once full.
            with open(node.config.home / "serve.log", "ab") as log:
                procs.append(
                    subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
                )
        for node, proc in zip(nodes, procs, strict=True):
            await asyncio.to_thread(wait_for, node.config.server_proxy.port, proc)
            await asyncio.to_thread(wait_for, node.config.client_proxy.http_port, proc)
        if profile_dir is not None:
            for node, proc in zip(nodes, procs, strict=True):
                spies.append(
                    start_py_spy(proc.pid, profile_dir / f"{node.name}.txt", gil)
                )
        yield procs
    finally:
        for spy in spies:
            spy.send_signal(2)  # py-spy writes its output on SIGINT
            spy.wait(timeout=30)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)  # a clean stop, as systemctl's
        for proc in procs:
            # In a thread: this loop serves the CA's OCSP and TSA meanwhile.
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _set_log_mode(node: Any, mode: str, stamp_every: int) -> None:
    """Write ``[message_log]`` into the node's ss.toml (replacing it).

    ``mode``, and ``stamp_every``: the time-stamper's interval (0: the
    global configuration's).
    """
    path = node.config.home / "ss.toml"
    lines, skipping = [], False
    for line in path.read_text().splitlines():
        if line.startswith("["):
            skipping = line == "[message_log]"
        if not skipping:
            lines.append(line)
    lines += ["[message_log]", f'mode = "{mode}"']
    if stamp_every > 0:
        lines.append(f"timestamping_interval_seconds = {stamp_every}")
    path.write_text("\n".join(lines) + "\n")


def _set_exchange(node: Any, key: str, value: str) -> None:
    """Set ``key = value`` in the node's ``[exchange]`` table."""
    path = node.config.home / "ss.toml"
    prefix = f"{key} = "
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith(prefix)]
    at = lines.index("[exchange]") + 1
    lines.insert(at, f"{prefix}{value}")
    path.write_text("\n".join(lines) + "\n")


def _set_batch(node: Any, on: bool) -> None:
    _set_exchange(node, "batch_signing", "true" if on else "false")


async def main(args: argparse.Namespace) -> None:
    from tests.integration.security_server import pair as pair_mod
    from tests.support.ports import free_port

    work = Path(tempfile.mkdtemp(prefix="bench-exchange-"))
    stub_port = free_port()
    stub = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_exchange", "--stub", str(stub_port)],
        stderr=subprocess.PIPE,
    )
    try:
        await asyncio.to_thread(wait_for, stub_port, stub)
        stub_url = f"http://127.0.0.1:{stub_port}/soap"
        async with aiohttp.ClientSession() as http:

            async def serve_app(app: web.Application) -> TestServer:
                server = TestServer(app, host="127.0.0.1")
                await server.start_server()
                return server

            ca = await pair_mod.start_ca(work, serve_app, http, tsa=True)
            exchange = ("serverconf_cache_seconds = 5", "peer_cache_seconds = 60")
            a, b, _, _ = await pair_mod.prepare_pair(
                work, ca, stub_url, exchange=exchange
            )
            request = pair_mod.trades_request(a.subsystem, b.subsystem)
            direct: dict[int, tuple[int, list[float], int]] = {}
            print(
                f"{'case':<37}{'clients':>8}{'exch/s':>9}{'median ms':>11}"
                f"{'p99 ms':>9}{'errors':>8}{'added ms':>10}{'ratio':>7}"
                f"{'cpu ms A/B/stub/load':>24}{'busy':>6}{'cpu max/s':>10}"
            )
            rates: dict[tuple[bool, str, int], int] = {}
            for batch in args.batch:
                for mode in args.log:
                    for node in (a, b):
                        _set_batch(node, batch)
                        _set_exchange(node, "workers", str(args.workers))
                        _set_log_mode(node, mode, args.stamp_every)
                    first = (batch, mode) == (args.batch[0], args.log[0])
                    profile = work if args.profile and first else None
                    async with _servers([a, b], profile, args.gil) as procs:
                        for clients in args.clients:
                            if clients not in direct:
                                direct[clients] = await load(
                                    stub_url, request, clients, args.duration
                                )
                                _report("direct", clients, direct[clients], None)
                            before: list[float] = []
                            machine: list[tuple[float, float]] = []

                            def mark(
                                procs: list[Any] = procs,
                                before: list[float] = before,
                                machine: list[tuple[float, float]] = machine,
                            ) -> None:
                                before[:] = [cpu_seconds(p.pid) for p in procs]
                                before.append(cpu_seconds(stub.pid))
                                before.append(time.process_time())
                                machine[:] = [machine_busy()]

                            result = await load(
                                a.client_proxy_url,
                                request,
                                clients,
                                args.duration,
                                on_start=mark,
                            )
                            now = [cpu_seconds(p.pid) for p in procs]
                            now.append(cpu_seconds(stub.pid))
                            now.append(time.process_time())
                            used = [n - b4 for n, b4 in zip(now, before, strict=True)]
                            busy_now = machine_busy()
                            busy = (busy_now[0] - machine[0][0]) / max(
                                1, busy_now[1] - machine[0][1]
                            )
                            name = (
                                f"via A,B batch={'on' if batch else 'off'} log={mode}"
                            )
                            done = max(1, len(result[1]))
                            cpu = "/".join(f"{1000 * u / done:.2f}" for u in used)
                            ceiling = (
                                (os.cpu_count() or 1) * done / max(1e-9, sum(used))
                            )
                            _report(
                                name,
                                clients,
                                result,
                                direct[clients],
                                cpu,
                                busy,
                                ceiling,
                            )
                            rates[(batch, mode, clients)] = result[0]
                        for rate in args.rates:
                            result = await load_open(
                                a.client_proxy_url, request, rate, args.duration
                            )
                            name = (
                                f"open {rate:g}/s batch={'on' if batch else 'off'}"
                                f" log={mode}"
                            )
                            _report(name, 64, result, None)
                    if mode != "none":
                        print(_stamped([a, b]), flush=True)
                    if profile is not None:
                        for node in (a, b):
                            print(summarise_profile(work / f"{node.name}.txt"))
            _report_logging_cost(rates, args)
            await ca.server.close()
    finally:
        stub.terminate()
        stub.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _stamped(nodes: list[Any]) -> str:
    """How many logged records each server time-stamped (the TSA is real:
    a run whose logs were not stamped did not bear the time-stamper's cost)."""
    counts = []
    for node in nodes:
        path = make_url(node.config.db_url).database  # the servers' SQLite file
        with contextlib.closing(sqlite3.connect(str(path))) as conn:
            total, stamped = conn.execute(
                "SELECT count(*), count(timestamp_id) FROM message_log"
            ).fetchone()
        counts.append(f"{node.name} {stamped} of {total}")
    return "  time-stamped records: " + ", ".join(counts)


def _report_logging_cost(
    rates: dict[tuple[bool, str, int], int], args: argparse.Namespace
) -> None:
    """Issue #6: throughput with logging full vs none, measured in this run."""
    if not {"full", "none"} <= set(args.log):
        return
    print("\ncost of logging (both servers, request and response, SQLite):")
    print(
        f"{'batch':<8}{'clients':>8}{'full/s':>9}{'none/s':>9}{'ratio':>7}{'cost':>7}"
    )
    for batch in args.batch:
        for clients in args.clients:
            full = rates[(batch, "full", clients)]
            none = rates[(batch, "none", clients)]
            ratio = full / max(1, none)
            print(f"{'on' if batch else 'off':<8}{clients:>8}{full:>9}{none:>9}"
                  f"{ratio:>7.2f}{100 * (1 - ratio):>6.0f}%")  # fmt: skip


def _report(
    name: str,
    clients: int,
    result: tuple[int, list[float], int],
    direct: tuple[int, list[float], int] | None,
    cpu: str = "",
    busy: float | None = None,
    ceiling: float | None = None,
) -> None:
    rate, lat, errors = result
    median = statistics.median(lat) * 1000
    added = ratio = ""
    if direct is not None:
        added = f"{median - statistics.median(direct[1]) * 1000:.2f}"
        ratio = f"{rate / max(1, direct[0]):.2f}"
    used = "" if busy is None else f"{100 * busy:.0f}%"
    most = "" if ceiling is None else f"{ceiling:.0f}"
    print(f"{name:<37}{clients:>8}{rate:>9}{median:>11.2f}{ms(lat, 0.99):>9.2f}"
          f"{errors:>8}{added:>10}{ratio:>7}{cpu:>24}{used:>6}{most:>10}",
          flush=True)  # fmt: skip


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument(
        "--batch",
        type=lambda v: v == "on",
        nargs="+",
        default=[True, False],
        metavar="{on,off}",
        help="batch signing settings to run (default: on off)",
    )
    parser.add_argument(
        "--log",
        nargs="+",
        choices=["full", "metadata", "none"],
        default=["full", "none"],
        help="message-log modes to run on both servers (default: full none; "
        "with both, the cost of logging is printed)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="[exchange] workers of both servers (proxy processes each)",
    )
    parser.add_argument(
        "--rates",
        type=float,
        nargs="*",
        default=[],
        metavar="R",
        help="also offer R requests/s in an open loop over 64 connections "
        "(Poisson arrivals; latency from arrival) and report the percentiles",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample both servers with py-spy (first batch setting) and print "
        "where their time goes",
    )
    parser.add_argument(
        "--gil",
        action="store_true",
        help="with --profile: count only samples holding the GIL",
    )
    parser.add_argument(
        "--stamp-every",
        type=int,
        default=2,
        metavar="S",
        help="both servers time-stamp their logs every S seconds (default 2, so "
        "that each measured window bears the time-stamper's cost, as any long "
        "run does at X-Road's 60 s; 0: the global configuration's interval)",
    )
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
