"""Running aiohttp apps until SIGTERM/SIGINT: in one process, or N forks.

With ``workers > 1`` the parent runs the start-up work once (migrating the
database, so workers never race on DDL), then forks N children; each binds
every listener with ``SO_REUSEPORT`` so the kernel spreads connections over
the cores. The parent forwards SIGTERM/SIGINT to the children and waits for
them; if one fails (port in use, broken home) the others are stopped too.

The apps are built in each worker (after the fork), from :class:`Site`
factories, so no event loop, engine or socket crosses a fork.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = [
    "GC_YOUNG_THRESHOLD",
    "Site",
    "install_uvloop",
    "run_workers",
    "serve_sites",
    "stop_on_signals",
    "tune_gc",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Site:
    """One listener: what to serve and where.

    Attributes:
        name: names the listener in the log (``CA API``, ``TSA``, ``adapter``).
        make_app: builds the app; called once in every worker.
        host: the address to bind.
        port: the TCP port.
    """

    name: str
    make_app: Callable[[], web.Application]
    host: str
    port: int


def install_uvloop() -> bool:
    """Use uvloop for new event loops when it is installed; True if it is."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


#: First-generation threshold of the cyclic collector in a server (CPython's
#: default is 700 net allocations of container objects).
GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a long-running server.

    It changes the whole process: a server's entry point calls it, once
    start-up is done (:func:`serve_sites`, ``jplink ss serve`` and its
    workers). Measured with both security servers, the service and the
    clients in one process (9 600 exchanges, 64 at a time): the collector
    took 121 µs per exchange, 7 % of the CPU, in 1 066 collections.
    Freezing halved that; the larger first generation left 2 collections.

    - ``gc.freeze()`` moves every object alive now (modules, configuration,
      caches built at start-up) to a permanent generation that no later
      collection walks. They are still freed by reference counting; only a
      reference cycle among them would now stay.
    - A larger first generation: an exchange creates and frees thousands of
      container objects, nearly all by reference counting, and at 700 net
      allocations the collector ran about once every 10 exchanges. Cyclic
      garbage still triggers a collection once :data:`GC_YOUNG_THRESHOLD` of
      it accumulates, so memory stays bounded.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: a server's cue to stop cleanly.

    Call it in the running event loop. Both signals get a handler whatever
    the process inherited: ``systemctl stop`` sends SIGTERM, whose default
    action ends the process at once (nothing drained, nothing closed), and
    a process started in the background by a shell inherits SIGINT ignored.
    A repeated signal changes nothing: systemd's ``TimeoutStopSec`` (or the
    operator's SIGKILL) bounds a stop that hangs.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def cue(signum: signal.Signals) -> None:
        if not stop.is_set():
            log.info("%s received: stopping (pid %d)", signum.name, os.getpid())
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, cue, signum)
    return stop


async def serve_sites(sites: Sequence[Site], *, reuse_port: bool = False) -> None:
    """Serve ``sites`` in this process until SIGTERM or SIGINT.

    Args:
        sites: the listeners, started in order and cleaned up in reverse.
        reuse_port: bind with ``SO_REUSEPORT`` (workers sharing the ports).

    Raises:
        OSError: a port cannot be bound (the started sites are cleaned up).
        JPLinkError: an app's start-up (its ``cleanup_ctx``) failed.
    """
    stop = stop_on_signals()
    runners: list[web.AppRunner] = []
    try:
        for site in sites:
            runner = web.AppRunner(site.make_app(), access_log=None)
            # Appended before setup: a start-up that fails half-way still
            # runs the cleanup of the contexts it entered.
            runners.append(runner)
            await runner.setup()
            tcp = web.TCPSite(runner, site.host, site.port, reuse_port=reuse_port)
            await tcp.start()
            log.info(
                "%s listening on http://%s:%d (pid %d)",
                site.name,
                site.host,
                site.port,
                os.getpid(),
            )
        tune_gc()
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def _child(sites: Sequence[Site]) -> None:  # pragma: no cover - runs in a fork
    code = 0
    try:
        asyncio.run(serve_sites(sites, reuse_port=True))
    except Exception:
        log.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait_for(children: list[int]) -> int:
    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    remaining = set(children)
    while remaining:
        pid, code = os.wait()
        if pid not in remaining:
            continue
        remaining.discard(pid)
        if os.waitstatus_to_exitcode(code) != 0 and status == 0:
            # One worker failed (port in use, broken home): stop the others.
            status = 1
            forward(signal.SIGTERM, None)
    return status


def run_workers(
    sites: Sequence[Site],
    *,
    workers: int = 1,
    prepare: Callable[[], Coroutine[Any, Any, object]] | None = None,
) -> int:
    """Serve ``sites`` until SIGTERM/SIGINT, in ``workers`` processes.

    Args:
        sites: the listeners every worker serves.
        workers: processes to run; above 1 they are forked and share the
            ports (``reuse_port``).
        prepare: start-up work run once, in the parent, before any worker
            starts (e.g. migrating the database).

    Returns:
        The exit status (0 after a clean stop, 1 if a worker failed).

    Raises:
        ValueError: for ``workers < 1``.
        JPLinkError: ``prepare`` failed (nothing was started).
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    install_uvloop()
    if prepare is not None:
        asyncio.run(prepare())
    if workers == 1:
        asyncio.run(serve_sites(sites))
        return 0
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            _child(sites)
        children.append(pid)
    return _wait_for(children)
