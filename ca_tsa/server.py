"""Running the CA: the API+OCSP app and the TSA app in one process, or N forks.

With ``workers > 1`` the parent migrates the database once, then forks N
children; each binds both listeners with ``SO_REUSEPORT`` so the kernel spreads
connections (OCSP is CPU-bound signing) over the cores. The parent forwards
SIGTERM/SIGINT to the children and waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from aiohttp import web

from .config import CaTsaConfig
from .service import open_database

__all__ = ["install_uvloop", "run_server"]

log = logging.getLogger(__name__)


def install_uvloop() -> bool:
    """Use uvloop for new event loops when it is installed; True if it is."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


async def _migrate(config: CaTsaConfig) -> None:
    db = await open_database(config)
    await db.dispose()


async def _serve(config: CaTsaConfig, *, reuse_port: bool) -> None:
    from .app import make_app, make_tsa_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    try:
        for app, host, port in (
            (make_app(config), config.api.host, config.api.port),
            (make_tsa_app(config), config.tsa.host, config.tsa.port),
        ):
            runner = web.AppRunner(app, access_log=None)
            runners.append(runner)
            await runner.setup()
            await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
            log.info("listening on http://%s:%d (pid %d)", host, port, os.getpid())
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def _child(config: CaTsaConfig) -> None:
    code = 0
    try:
        asyncio.run(_serve(config, reuse_port=True))
    except Exception:
        log.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_server(config: CaTsaConfig, *, workers: int = 1) -> int:
    """Serve until SIGTERM/SIGINT.

    Args:
        config: the instance configuration.
        workers: processes to run; above 1 they share the ports (reuse_port).

    Returns:
        The exit status (0 after a clean stop, 1 if a worker failed).

    Raises:
        ValueError: for ``workers < 1``.
        JPLinkError: configuration or database problems found at start-up.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    install_uvloop()
    # Migrate once, before any worker starts, so workers never race on DDL.
    asyncio.run(_migrate(config))
    if workers == 1:
        asyncio.run(_serve(config, reuse_port=False))
        return 0
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            _child(config)
        children.append(pid)

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
